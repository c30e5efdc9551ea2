#!/bin/bash
# tests/bench/foundation.sh - the foundation issue's figures, pathman and Debian's ConnMan
# (connmand 1.41) measured side by side in one run, each in its own fresh 3-upstream lab
# (tests/lab/lab.sh, with --inet so online checks can succeed). Needs root.
#
# Usage: foundation.sh [--runs R] [--iter I] [--flaps F] [--only pathman|connman]
#                      [--out DIR] [--no-build]
#   1. cold start -> all 3 services ready/online AND every DUT interface has its 198.18.K.x
#      IPv4 address: median of R (default 5) cold starts ("first boot": DUT interfaces down
#      and flushed, daemon state removed). Same method for both daemons: every ~10 ms
#      `busctl call net.connman / net.connman.Manager GetServices` on the lab bus (count
#      State ready|online) and `ip -4 addr` in the DUT; t0 = just before the daemon is
#      spawned (lab.sh writes it), so the sandbox wrapper (~10 ms) is included. Also: time
#      until the first successful GetServices (bus name + manager object up).
#   2. VmHWM, VmRSS (/proc/PID/status) and threads (/proc/PID/task) after 5 s settled with
#      3 services.
#   3. failover on carrier loss of the default uplink: `ip -ts monitor link route` in the
#      DUT; time from the kernel's link event for that interface (first line without
#      LOWER_UP) to the first IPv4 default-route change line (Deleted default / new
#      default), both from the monitor's timestamps; median of I (default 5) iterations
#      (link back and all services ready between iterations).
#   4. flap recovery: F (default 20) flaps of link 2 (down 1 s, up); success = all 3
#      services ready and the interface has IPv4 within 2 s of the link coming back.
#   5. binary size: target/aarch64-unknown-linux-musl/release/pathman (built if missing and
#      the target is installed; stripped copy measured) vs connmand + its shared libraries.
# Results (raw per-run data + summary table) go to DIR (default /tmp/pm-bench/<timestamp>).
# The table gives every figure with its target (issue 2) and whether it was met, ConnMan's
# figure and the ratio beside pathman's; the header names the binary measured.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
ARGS=("$@")
RUNS=5; ITER=5; FLAPS=20; ONLY=""; BUILD=1
OUT=/tmp/pm-bench/$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
    case "$1" in
        --runs)     RUNS=$2; shift ;;
        --iter)     ITER=$2; shift ;;
        --flaps)    FLAPS=$2; shift ;;
        --only)     ONLY=$2; shift ;;
        --out)      OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help)  sed -n '2,30p' "$0"; exit 0 ;;
        *)          echo "foundation.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$ONLY" != connman ] || BUILD=0
bench_init foundation.sh "$0" "${ARGS[@]+"${ARGS[@]}"}"
mkdir -p "$OUT"
N=3

# ------------------------------------------------------------------ per-daemon probes
# (globals while measuring one daemon: ID, NAME (daemon|connman), PROC, S, BUS, DUTNS)
dctl() { "$LAB" "$NAME" "$ID" "$@"; }
dpid() { dctl pid 2>/dev/null; }
n_ready() {
    busctl --address="$BUS" --json=short call net.connman / net.connman.Manager GetServices 2>/dev/null \
        | grep -oE '"State":\{"type":"s","data":"(ready|online)"\}' | wc -l
}
bus_up() { busctl --address="$BUS" call net.connman / net.connman.Manager GetServices >/dev/null 2>&1; }
all_ipv4() {   # every lab interface has its 198.18.K.x address
    local a k
    a=$(ip -n "$DUTNS" -4 -o addr show 2>/dev/null)
    for ((k = 1; k <= N; k++)); do
        grep -qE " $(sed -n "${k}p" "$S/ifnames") +inet 198\.18\.$k\." <<<"$a" || return 1
    done
}
has_ipv4() { ip -n "$DUTNS" -4 -o addr show dev "$1" 2>/dev/null | grep 'inet 198\.18\.' >/dev/null; }
all_up() { [ "$(n_ready)" -ge $N ] && all_ipv4; }
wait_all_up() {   # SECONDS
    local end=$(( $(now_ns) + $1 * 1000000000 ))
    until all_up; do [ "$(now_ns)" -lt "$end" ] || return 1; sleep 0.05; done
}
default_dev() {
    ip -n "$DUTNS" -4 route show default | awk '{m=0; d=""; for(i=1;i<NF;i++){if($i=="dev")d=$(i+1); if($i=="metric")m=$(i+1)} if(d!="") print m, d}' \
        | sort -n | awk 'NR==1{print $2}'
}

measure() {   # measure pathman|connman
    local what=$1 r t0 t_bus t_all now res pid t_link t_route
    NAME=daemon; [ "$what" = connman ] && NAME=connman
    PROC=pathman; [ "$what" = connman ] && PROC=connmand
    ID=b$$${what:0:1}; bench_lab "$ID"
    S=$("$LAB" dir "$ID"); BUS=unix:path=$S/bus.sock; DUTNS=pm-$ID-dut
    local R=$OUT/$what; mkdir -p "$R"
    log "$what: lab $ID"
    "$LAB" up "$ID" $N --inet 2>>"$R/lab.log"
    "$LAB" bus "$ID" start >/dev/null

    # 1. cold starts
    : >"$R/startup.txt"
    for ((r = 1; r <= RUNS; r++)); do
        "$LAB" reset "$ID"
        dctl start 2>>"$R/lab.log" || { log "$what: start failed"; tail -5 "$S/$PROC.log" >&2; return 1; }
        t0=$(cat "$S/$PROC.t0"); t_bus=""; t_all=""
        while :; do
            now=$(now_ns)
            if [ -z "$t_bus" ] && bus_up; then t_bus=$(( ($(now_ns) - t0) / 1000000 )); fi
            if [ -n "$t_bus" ] && all_up; then t_all=$(( ($(now_ns) - t0) / 1000000 )); break; fi
            if [ $(( (now - t0) / 1000000000 )) -ge 30 ]; then break; fi
            [ -d "/proc/$(cat "$S/pids/$PROC.pid" 2>/dev/null || echo 0)" ] || { log "$what died during start"; break; }
            sleep 0.01
        done
        echo "run $r: ms_to_bus ${t_bus:-timeout} ms_to_all_ready_ipv4 ${t_all:-timeout}" | tee -a "$R/startup.txt" >&2
        if [ $r -lt "$RUNS" ]; then dctl stop; fi
    done
    awk '{print $6}' "$R/startup.txt" | median >"$R/startup.median"
    awk '{print $4}' "$R/startup.txt" | median >"$R/bus.median"

    # 2. resources
    wait_all_up 30 || log "$what: not all services up before settling"
    sleep 5
    pid=$(dpid)
    [ "$(cat "/proc/$pid/comm")" = "${PROC:0:15}" ] || log "$what: pid $pid is $(cat "/proc/$pid/comm")"
    grep -E '^(VmPeak|VmHWM|VmRSS|RssAnon|RssFile|Threads)' "/proc/$pid/status" >"$R/resources.txt"
    awk '/^VmHWM/{print $2}' "$R/resources.txt" >"$R/vmhwm"
    awk '/^VmRSS/{print $2}' "$R/resources.txt" >"$R/vmrss"
    find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l >"$R/threads"
    log "$what: VmHWM $(cat "$R/vmhwm") kB, VmRSS $(cat "$R/vmrss") kB, threads $(cat "$R/threads")"

    # 3. failover on carrier loss of the default uplink
    : >"$R/failover.txt"
    local i old k mon monpid ms end
    for ((i = 1; i <= ITER; i++)); do
        wait_all_up 30 || log "$what: not all services up before failover $i"
        sleep 1
        old=$(default_dev); k=$(grep -nx "$old" "$S/ifnames" | cut -d: -f1 || true)
        if [ -z "$k" ]; then echo "iter $i: no default route" >>"$R/failover.txt"; continue; fi
        mon=$R/monitor-$i.txt
        ip -n "$DUTNS" -ts monitor link route >"$mon" 2>&1 &
        monpid=$!
        sleep 0.3
        "$LAB" link "$ID" "$k" down
        end=$(( $(now_ns) + 10000000000 ))
        while :; do
            local d; d=$(default_dev)
            if [ -n "$d" ] && [ "$d" != "$old" ]; then break; fi
            [ "$(now_ns)" -lt "$end" ] || break
            sleep 0.01
        done
        sleep 0.3
        kill "$monpid" 2>/dev/null || true; wait "$monpid" 2>/dev/null || true
        # link event: "[ts] IDX: old@...: <...> ... " without LOWER_UP; then the first IPv4
        # default route line ("default via 198.18..." / "Deleted default via 198.18..." / "default dev ...")
        res=$(awk -v dev="$old" '
            function secs(s,  t) { t = substr(s, 12); split(t, p, ":"); return p[1]*3600 + p[2]*60 + p[3] }
            /^\[/ {
                ts = substr($1, 2, length($1) - 2); rest = substr($0, length($1) + 2)
                if (tl == "" && rest ~ ("^[0-9]+: " dev "[@:]") && rest !~ /LOWER_UP/) tl = secs(ts)
                else if (tl != "" && rest ~ /^(Deleted )?default (via [0-9]+\.[0-9.]+ |dev )/) { printf "%.6f %.6f\n", tl, secs(ts); done = 1; exit }
            }
            END { if (done) exit; if (tl == "") print "- -"; else printf "%.6f -\n", tl }' "$mon" || true)
        read -r t_link t_route <<<"${res:-- -}" || true
        if [ "$t_link" != "-" ] && [ -n "${t_route:-}" ] && [ "$t_route" != "-" ]; then
            ms=$(awk -v a="$t_link" -v b="$t_route" 'BEGIN{printf "%.1f", (b-a)*1000}')
        else
            ms=timeout
        fi
        echo "iter $i: link $k ($old) down -> first default-route change after ${ms} ms; default now $(default_dev)" | tee -a "$R/failover.txt" >&2
        "$LAB" link "$ID" "$k" up
    done
    sed -nE 's/.* after ([0-9.]+) ms.*/\1/p' "$R/failover.txt" | median >"$R/failover.median"

    # 4. flaps of link 2
    wait_all_up 30 || true
    local ok=0 dev2 t
    dev2=$(sed -n 2p "$S/ifnames")
    : >"$R/flaps.txt"
    for ((i = 1; i <= FLAPS; i++)); do
        "$LAB" link "$ID" 2 down; sleep 1
        # The flap must have taken effect, or "recovered" would mean nothing.
        if has_ipv4 "$dev2"; then
            echo "flap $i: $dev2 still configured 1 s after carrier loss" >>"$R/flaps.txt"
            "$LAB" link "$ID" 2 up; wait_all_up 20 || true; continue
        fi
        "$LAB" link "$ID" 2 up
        t0=$(now_ns); t=""
        while [ $(( $(now_ns) - t0 )) -lt 2000000000 ]; do
            if [ "$(n_ready)" -ge $N ] && has_ipv4 "$dev2"; then t=$(( ($(now_ns) - t0) / 1000000 )); break; fi
            sleep 0.02
        done
        if [ -n "$t" ]; then ok=$((ok + 1)); echo "flap $i: ready after $t ms" >>"$R/flaps.txt"
        else echo "flap $i: not ready within 2 s" >>"$R/flaps.txt"; wait_all_up 20 || true; fi
    done
    echo "$ok" >"$R/flaps.ok"
    log "$what: flaps $ok/$FLAPS recovered within 2 s"

    cp "$S/$PROC.log" "$R/" 2>/dev/null || true
    dctl stop
    "$LAB" down "$ID"
}

# ------------------------------------------------------------------ run
if [ "$ONLY" != connman ]; then
    if [ -x "$PATHMAN" ]; then
        measure pathman || log "pathman half failed (see $OUT/pathman)"
    else
        log "no pathman binary at $PATHMAN: pathman half skipped"
    fi
fi
if [ "$ONLY" != pathman ]; then
    if command -v connmand >/dev/null; then
        measure connman || log "connman half failed (see $OUT/connman)"
    else
        log "connmand not installed: connman half skipped"
    fi
fi

# 5. binary sizes
size_pm=n/a
AARCH=$REPO/target/aarch64-unknown-linux-musl/release/pathman
if [ ! -f "$AARCH" ] && [ $BUILD = 1 ] && [ "$ONLY" != connman ] && pm_find_cargo && command -v rustup >/dev/null \
    && rustup target list --installed 2>/dev/null | grep -x aarch64-unknown-linux-musl >/dev/null; then
    (cd "$REPO" && cargo build --release --target aarch64-unknown-linux-musl) >&2 || true
fi
if [ -f "$AARCH" ]; then
    cp "$AARCH" "$OUT/pathman.aarch64"
    for s in llvm-strip rust-strip aarch64-linux-gnu-strip; do
        if command -v "$s" >/dev/null; then "$s" "$OUT/pathman.aarch64" 2>/dev/null && break; fi
    done
    size_pm=$(stat -c %s "$OUT/pathman.aarch64")
    echo "pathman aarch64-musl: $size_pm bytes (release profile strips; re-stripped if a strip tool exists)" >"$OUT/size.txt"
fi
size_cm=n/a
if command -v connmand >/dev/null; then
    cmbin=$(command -v connmand)
    libs=$(ldd "$cmbin" | awk '/=>/ {print $3}' | xargs -r readlink -f | sort -u)
    size_cm=$(( $(stat -L -c %s "$cmbin") + $(echo "$libs" | xargs -r stat -L -c %s | awk '{s+=$1} END{print s+0}') ))
    { echo "connmand $(stat -L -c %s "$cmbin") bytes + $(echo "$libs" | wc -l) shared libraries = $size_cm bytes ($(uname -m))"
      echo "$libs" | xargs -r stat -L -c '  %s %n'; } >>"$OUT/size.txt"
fi

# ------------------------------------------------------------------ table
val() { cat "$OUT/$1/$2" 2>/dev/null || echo n/a; }
{
    bench_header "foundation figures (issue 2 targets)"
    echo "connman = Debian's connmand in the same lab; ratio = pathman / ConnMan"
    row_head
    s_pm=$(val pathman startup.median); s_cm=$(val connman startup.median)
    row "start -> 3 ready + IPv4, ms (median of $RUNS)" "$s_pm" "$s_cm" "<= 0.5 x ConnMan" "$(verdict "$(ratio "$s_pm" "$s_cm")" "<=" 0.5)"
    row "start -> bus answers, ms (median)" "$(val pathman bus.median)" "$(val connman bus.median)" "(no target)" "-"
    h_pm=$(val pathman vmhwm); r_cm=$(val connman vmrss)
    row "VmHWM after settling, kB" "$h_pm" "$(val connman vmhwm)" "<= 3072 kB (3 MB)" "$(verdict "$h_pm" "<=" 3072)"
    row "VmHWM / ConnMan's VmRSS" "$h_pm" "$r_cm" "<= 0.4" "$(verdict "$(ratio "$h_pm" "$r_cm")" "<=" 0.4)"
    row "VmRSS after settling, kB" "$(val pathman vmrss)" "$r_cm" "(no target)" "-"
    row "threads" "$(val pathman threads)" "$(val connman threads)" "<= 2" "$(verdict "$(val pathman threads)" "<=" 2)"
    f_pm=$(val pathman failover.median)
    row "failover: link event -> route change, ms (median/$ITER)" "$f_pm" "$(val connman failover.median)" "<= 1 ms" "$(verdict "$f_pm" "<=" 1)"
    row "carrier flaps ready again within 2 s (of $FLAPS)" "$(val pathman flaps.ok)" "$(val connman flaps.ok)" "$FLAPS of $FLAPS" "$(verdict "$(val pathman flaps.ok)" "==" "$FLAPS")"
    row "size: stripped aarch64-musl / connmand+libs, B" "$size_pm" "$size_cm" "<= 2,500,000 B" "$(verdict "$size_pm" "<=" 2500000)"
    [ "$size_pm" != n/a ] || echo "  (no aarch64-musl build: rustup target add aarch64-unknown-linux-musl, see cross/README.md)"
    echo "raw data: $OUT"
} | tee "$OUT/summary.txt"
