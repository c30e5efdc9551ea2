#!/bin/bash
# tests/bench/startup.sh - the firmware issue's start-up figures, pathman and Debian's
# ConnMan (connmand 1.41) side by side, each in its own fresh 3-upstream lab. Needs root.
#
# Usage: startup.sh [--runs R] [--only pathman|connman] [--out DIR]
#   Each of R (default 7) starts: DUT interfaces flushed and then set up with carrier
#   (as on a board whose links are up when init starts the manager), daemon state removed.
#   t0 (exec) = $EPOCHREALTIME in a wrapper that then execs the daemon binary itself, so
#   the lab's sandbox (netns, mount namespace) is not counted. Measured from outside:
#   1. exec -> net.connman owned: NameOwnerChanged on the lab bus, seen by a GLib client
#      started before the daemon (tests/bench/tools/bus_times.py).
#   2. exec -> first DHCPDISCOVER on the wire: tcpdump on upstream 1's side of the link
#      (kernel capture timestamps, µs).
#   3. exec -> 3 services ready: the same GLib client, counting State ready|online from
#      ServicesChanged / Service.PropertyChanged (the same signals for both daemons).
#   Medians of R. Targets (issue 12): 1 <= 15 ms, 2 <= 10 ms, 3 <= 0.35 x ConnMan.
#   ConnMan's DHCP has no address conflict detection; pathman's does (AddressConflictDetection,
#   default on: ARP probes before an offered address is used), so pathman is also measured
#   with it off (row "ACD off") for the like-for-like figure.
# Raw data and the table go to DIR (default /tmp/pm-bench/startup-<timestamp>).
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
ARGS=("$@")
RUNS=7; ONLY=""
OUT=/tmp/pm-bench/startup-$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
    case "$1" in
        --runs)    RUNS=$2; shift ;;
        --only)    ONLY=$2; shift ;;
        --out)     OUT=$2; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *)         echo "startup.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_init startup.sh "$0" "${ARGS[@]+"${ARGS[@]}"}"
mkdir -p "$OUT"
N=3
for t in tcpdump python3 connmand; do
    command -v "$t" >/dev/null || [ "$t" = connmand ] || { echo "startup.sh: $t missing (tests/lab/install-deps.sh)" >&2; exit 1; }
done

# The wrappers: t0 just before exec, in the daemon's own sandbox.
WRAP=$OUT/wrap; mkdir -p "$WRAP"
mkwrap() {   # NAME REAL-BINARY
    printf '#!/bin/bash\necho "${EPOCHREALTIME/./}" >"%s/%s.t0us"\nexec %s "$@"\n' "$WRAP" "$1" "$2" >"$WRAP/$1"
    chmod +x "$WRAP/$1"
}
mkwrap pathman "$PATHMAN"
if command -v connmand >/dev/null; then
    # lab.sh runs `connmand` from PATH: a directory whose connmand is the wrapper.
    mkdir -p "$WRAP/cmbin"
    printf '#!/bin/bash\necho "${EPOCHREALTIME/./}" >"%s/connmand.t0us"\nexec %s "$@"\n' "$WRAP" "$(command -v connmand)" >"$WRAP/cmbin/connmand"
    chmod +x "$WRAP/cmbin/connmand"
fi

# measure NAME WHAT [DAEMON-ARGS...]   NAME: a label; WHAT: pathman|connman
measure() {
    local label=$1 what=$2; shift 2
    local ctl=daemon; [ "$what" = connman ] && ctl=connman
    local ID=s$$${label:0:2}; ID=${ID//-/}
    bench_lab "$ID"
    local S DUTNS UPNS R r k
    S=$("$LAB" dir "$ID"); DUTNS=pm-$ID-dut; UPNS=pm-$ID-up1
    R=$OUT/$label; mkdir -p "$R"; : >"$R/runs.txt"
    log "$label: lab $ID"
    "$LAB" up "$ID" $N 2>>"$R/lab.log" >/dev/null
    "$LAB" bus "$ID" start >/dev/null
    for ((r = 1; r <= RUNS; r++)); do
        "$LAB" reset "$ID"
        rm -rf "$S/state" "$S/run"
        while read -r k; do ip -n "$DUTNS" link set "$k" up; done <"$S/ifnames"
        local end=$(( $(now_ns) + 5000000000 ))
        until [ "$(ip -n "$DUTNS" -o link show up | grep -c LOWER_UP)" -ge $((N + 1)) ]; do
            [ "$(now_ns)" -lt "$end" ] || { log "$label: no carrier"; break; }
            sleep 0.01
        done
        # tcpdump and the bus client listen before the daemon starts
        rm -f "$R/cap.txt" "$R/cap.err" "$R/bus.txt" "$WRAP"/*.t0us
        ip netns exec "$UPNS" tcpdump -l -n -tt --time-stamp-precision=micro -i down0 -c 1 \
            'udp dst port 67' >"$R/cap.txt" 2>"$R/cap.err" &
        local tdpid=$!
        end=$(( $(now_ns) + 5000000000 ))
        until grep -q "listening on" "$R/cap.err" 2>/dev/null; do
            [ "$(now_ns)" -lt "$end" ] || { log "tcpdump did not start"; break; }
            sleep 0.01
        done
        "$LAB" exec "$ID" /usr/bin/python3 "$HERE/tools/bus_times.py" $N 30 >"$R/bus.txt" 2>>"$R/lab.log" &
        local bpid=$!
        end=$(( $(now_ns) + 5000000000 ))
        until grep -q "^ready" "$R/bus.txt" 2>/dev/null; do
            [ "$(now_ns)" -lt "$end" ] || { log "bus client did not start"; break; }
            sleep 0.01
        done
        if [ "$what" = connman ]; then
            PATH=$WRAP/cmbin:$PATH "$LAB" connman "$ID" start "$@" 2>>"$R/lab.log"
        else
            PATHMAN=$WRAP/pathman "$LAB" daemon "$ID" start "$@" 2>>"$R/lab.log"
        fi
        wait "$bpid" || true
        end=$(( $(now_ns) + 5000000000 ))
        while kill -0 "$tdpid" 2>/dev/null && [ "$(now_ns)" -lt "$end" ]; do sleep 0.01; done
        kill "$tdpid" 2>/dev/null || true; wait "$tdpid" 2>/dev/null || true
        local t0 owned ready disc
        t0=$(cat "$WRAP"/*.t0us 2>/dev/null | sed -n 1p)
        owned=$(awk '$1=="owned"{print $2}' "$R/bus.txt")
        ready=$(awk '$1=="ready"{print $2}' "$R/bus.txt")
        disc=$(awk 'NR==1{split($1,a,"."); print a[1] a[2]}' "$R/cap.txt")
        ms() { [ -n "$1" ] && [ -n "$t0" ] && awk -v a="$1" -v b="$t0" -v d="$2" 'BEGIN{printf "%.1f", (a/d-b)/1000}' || echo n/a; }
        echo "run $r: owned_ms $(ms "$owned" 1000) discover_ms $(ms "$disc" 1) ready_ms $(ms "$ready" 1000)" \
            | tee -a "$R/runs.txt" >&2
        "$LAB" "$ctl" "$ID" stop
    done
    awk '{print $4}' "$R/runs.txt" | median >"$R/owned"
    awk '{print $6}' "$R/runs.txt" | median >"$R/discover"
    awk '{print $8}' "$R/runs.txt" | median >"$R/ready"
    "$LAB" down "$ID" >/dev/null 2>&1 || true
}

[ "$ONLY" = connman ] || measure pathman pathman
printf '[General]\nAddressConflictDetection=false\n' >"$OUT/noacd.conf"
[ "$ONLY" = connman ] || measure pathman-noacd pathman -c "$OUT/noacd.conf"
if [ "$ONLY" != pathman ] && command -v connmand >/dev/null; then measure connman connman; fi

val() { cat "$OUT/$1/$2" 2>/dev/null || echo n/a; }
{
    bench_header "startup.sh: $RUNS starts each, links up with carrier before exec"
    row_head
    row "exec -> net.connman owned, ms" "$(val pathman owned)" "$(val connman owned)" "<= 15" "$(verdict "$(val pathman owned)" "<=" 15)"
    row "exec -> first DHCPDISCOVER on the wire, ms" "$(val pathman discover)" "$(val connman discover)" "<= 10" "$(verdict "$(val pathman discover)" "<=" 10)"
    row "exec -> 3 services ready, ms" "$(val pathman ready)" "$(val connman ready)" "<= 0.35 x ConnMan" "$(verdict "$(ratio "$(val pathman ready)" "$(val connman ready)")" "<=" 0.35)"
    row "  same, ACD off (as ConnMan), ms" "$(val pathman-noacd ready)" "$(val connman ready)" "<= 0.35 x ConnMan" "$(verdict "$(ratio "$(val pathman-noacd ready)" "$(val connman ready)")" "<=" 0.35)"
} | tee "$OUT/summary.txt"
echo "raw data: $OUT" >&2
