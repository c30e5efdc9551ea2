#!/bin/bash
# tests/bench/cellular.sh - the cellular issue's figures, each beside its target with a
# verdict, for the binary in PATHMAN (the static musl build when it exists). Needs root; one
# lab (removed on exit): the DUT's dummy0 is the data link of a simulated modem driven by
# Debian's real ofonod (lab.sh ofono: phonesim plugin + tests/lab/at_modem.py), eth1 and eth2
# are wired uplinks, all three with dnsmasq upstreams and an Internet behind (--inet).
#
#   1. Service.Connect of the cellular service (DHCP path: oFono's Settings say Method dhcp)
#      -> State ready: median of R rounds (default 5), timed from the bus by a monitor
#      (tools/cell_bench.py) and DHCP on the wire (tcpdump on the upstream). The pathman share
#      is the time not spent waiting for oFono or the DHCP server:
#        (Connect sent -> pathman's SetProperty(Active) to oFono)
#        + (oFono's Active=true -> pathman's first DHCP packet; 0 if it came before)
#        + (the server's last reply before ready -> State ready). Target <= 10 ms.
#      The static path (Method static: the modem's address) comes from the harness's fake
#      oFono (phonesim never gives one): a second lab, the same Connect timing; the pathman
#      share there is (Connect -> SetProperty) + (Active=true -> State ready).
#      ConnMan 1.41 is measured the same way in the same lab (a fresh ofonod, the same modem).
#   2. Both wired uplinks' Internet black-holed -> the default route (`ip route get` to the
#      Internet) on dummy0; restored -> back on wired: R runs. Targets (the online-check
#      issue's): median <= 3 s, worst <= 5 s; back <= 10 s.
#   3. Steady state, 120 s after the checks settled: bytes between the cellular uplink and
#      the Internet (both directions, on the Internet side of upstream 1), per minute.
#      Target <= 205 (0.2 KB).
#   4. VmHWM with 2 ethernet + 1 cellular service ready. Target <= 3072 kB (static musl).
# Usage: cellular.sh [--rounds R]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
ARGS=("$@")
ROUNDS=5
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "cellular.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_init cellular.sh "$0" "${ARGS[@]+"${ARGS[@]}"}"
ID=bc$$
bench_lab "$ID"
SVC=cellular_001010123456789_context1
CTX=/phonesim/context1
OUT=$(mktemp -d /tmp/pm-bench-cellular.XXXXXX)
bench_cleanup_hook() { rm -rf "$OUT"; }

x() { "$LAB" exec "$ID" "$@"; }
route_dev() { x ip route get 198.19.0.1 2>/dev/null | grep -o 'dev [^ ]*' | cut -d' ' -f2; }
ctx_prop() {   # the value of a context property, as busctl prints it
    x busctl --system call org.ofono "$CTX" org.ofono.ConnectionContext GetProperties 2>/dev/null \
        | tr ' ' '\n' | awk -v k="\"$1\"" 'f == 2 { gsub(/"/, ""); print; exit } f { f++ } $0 == k { f = 1 }'
}
svc_state() { x connmanctl services 2>/dev/null | awk -v id="$SVC" '$NF == id { print substr($0, 3, 1) }'; }
wait_ms() {   # LIMIT_S CMD...: ms until CMD succeeds, or "timeout"
    local limit=$1 t0; shift
    t0=$(now_ns)
    while :; do
        if "$@"; then echo $(( ($(now_ns) - t0) / 1000000 )); return 0; fi
        [ $(( ($(now_ns) - t0) / 1000000000 )) -lt "$limit" ] || { echo timeout; return 1; }
        sleep 0.02
    done
}
until_ok() {   # LIMIT_S WHAT CMD...
    local limit=$1 what=$2; shift 2
    wait_ms "$limit" "$@" >/dev/null || { log "timed out waiting for $what"; exit 1; }
}
on_dev() { [ "$(route_dev)" = "$1" ]; }
off_dev() { local d; d=$(route_dev); [ -n "$d" ] && [ "$d" != "$1" ]; }
has_svc() { [ -n "$(svc_state)" ]; }
is_ready() { case "$(svc_state)" in R|O) return 0 ;; *) return 1 ;; esac; }
ctx_is() { [ "$(ctx_prop Active)" = "$1" ]; }
ctx_type_is() { [ "$(ctx_prop Type)" = "$1" ]; }
cell_online() { [ "$(svc_state)" = O ]; }
acked() { tail -n +"$(($1 + 1))" "$OUT/dhcp.txt" | grep '\.67 > .*\.68:' >/dev/null; }
listening() { grep 'listening on' "$OUT/tcpdump.err" >/dev/null 2>&1; }
no_addr() { [ -z "$(x ip -4 -o addr show dev dummy0)" ]; }
wired_online() { [ "$(x connmanctl services 2>/dev/null | awk '$NF ~ /^ethernet_/ && substr($0, 3, 1) == "O"' | grep -c .)" -ge 2 ]; }

log "lab up: dummy0 (modem), eth1, eth2, --inet"
"$LAB" up "$ID" 3 --ifnames dummy0,eth1,eth2 --no-ipv6 --inet >/dev/null
"$LAB" bus "$ID" start >/dev/null
"$LAB" ofono "$ID" start >/dev/null
BOARD=$OUT/board.conf
printf '[Board]\nName=bench-cellular\n\n[Interfaces]\nManage=dummy0,eth1,eth2\n\n[Interface dummy0]\nTechnology=cellular\n' >"$BOARD"
"$LAB" daemon "$ID" start --board "$BOARD" -M >/dev/null 2>&1
"$LAB" wait-name "$ID" net.connman 10 >/dev/null
x connmanctl enable cellular >/dev/null
until_ok 30 "oFono's internet context" ctx_type_is internet
x busctl --system call org.ofono "$CTX" org.ofono.ConnectionContext SetProperty sv AccessPointName s internet >/dev/null
until_ok 30 "the cellular service" has_svc
until_ok 30 "both wired uplinks online" wired_online

UP1=$("$LAB" ns "$ID" 1)
ip netns exec "$UP1" tcpdump -i down0 -n -tt -l -U 'udp port 67 or udp port 68' \
    >"$OUT/dhcp.txt" 2>"$OUT/tcpdump.err" &
BENCH_PIDS+=($!)
until_ok 10 "tcpdump capturing" listening

dhcp_rounds() {   # WHO: ROUNDS Connects over the DHCP path; "total_ms share_ms" per round
    local who=$1 r before c s a y req ack total share
    for r in $(seq 1 "$ROUNDS"); do
        before=$(wc -l <"$OUT/dhcp.txt")
        if ! x /usr/bin/python3 "$HERE/tools/cell_bench.py" "$SVC" "$CTX" 60 \
                >"$OUT/$who-round$r.txt" 2>"$OUT/$who-round$r.err"; then
            log "$who round $r: Connect failed: $(cat "$OUT/$who-round$r.err")"; continue
        fi
        until_ok 10 "ready" is_ready
        until_ok 5 "the ACK captured" acked "$before"
        t() { awk -v k="$1" '$1 == k { print $2 }' "$OUT/$who-round$r.txt"; }
        c=$(t connect); s=$(t setprop); a=$(t active); y=$(t ready)
        # The client's first DHCP packet after the SetProperty (ConnMan starts on the Settings
        # signal, before Active: no wait is counted then), the server's last reply before ready
        req=$(tail -n +"$((before + 1))" "$OUT/dhcp.txt" | awk -v a="$s" '/\.68 > .*\.67:/ { t = $1 * 1e9; if (t >= a) { printf "%.0f\n", t; exit } }')
        ack=$(tail -n +"$((before + 1))" "$OUT/dhcp.txt" | awk -v y="$y" '/\.67 > .*\.68:/ { t = $1 * 1e9; if (t <= y) last = t } END { if (last) printf "%.0f\n", last }')
        if [ -z "$s" ] || [ -z "$a" ] || [ -z "$y" ] || [ -z "$req" ] || [ -z "$ack" ]; then
            log "$who round $r: incomplete timestamps ($(tr '\n' ' ' <"$OUT/$who-round$r.txt"), req=$req ack=$ack)"
        else
            total=$(awk -v c="$c" -v y="$y" 'BEGIN { printf "%.1f", (y - c) / 1e6 }')
            share=$(awk -v c="$c" -v s="$s" -v a="$a" -v q="$req" -v k="$ack" -v y="$y" \
                'BEGIN { g = q - a; if (g < 0) g = 0; printf "%.2f", ((s - c) + g + (y - k)) / 1e6 }')
            log "$who round $r: ready after $total ms, the daemon's share $share ms"
            echo "$total $share"
        fi
        x connmanctl disconnect "$SVC" >/dev/null 2>&1 || true
        until_ok 15 "the context inactive" ctx_is false
        until_ok 15 "dummy0's address gone" no_addr
    done
}
col() { awk -v k="$1" '{ print $k }' "$2"; }
dhcp_rounds pathman >"$OUT/pm-rounds.txt"
total=$(col 1 "$OUT/pm-rounds.txt" | median)
share=$(col 2 "$OUT/pm-rounds.txt" | median)
share_worst=$(col 2 "$OUT/pm-rounds.txt" | sort -n | tail -1)

# 1c: ConnMan 1.41 with a fresh ofonod and the same modem, then pathman again for the rest
log "ConnMan 1.41: the same Connects"
"$LAB" daemon "$ID" stop >/dev/null 2>&1 || true
"$LAB" ofono "$ID" start >/dev/null
"$LAB" connman "$ID" start >/dev/null 2>&1
"$LAB" wait-name "$ID" net.connman 10 >/dev/null
# ConnMan makes the technology once it has powered the modem and read its SIM.
has_cell_tech() { x connmanctl technologies 2>/dev/null | grep '/net/connman/technology/cellular' >/dev/null; }
until_ok 30 "ConnMan's cellular technology" has_cell_tech
x connmanctl enable cellular >/dev/null 2>&1 || true
until_ok 30 "oFono's internet context (ConnMan)" ctx_type_is internet
x busctl --system call org.ofono "$CTX" org.ofono.ConnectionContext SetProperty sv AccessPointName s internet >/dev/null
until_ok 30 "ConnMan's cellular service" has_svc
dhcp_rounds ConnMan >"$OUT/cm-rounds.txt"
cm_total=$(col 1 "$OUT/cm-rounds.txt" | median)
cm_share=$(col 2 "$OUT/cm-rounds.txt" | median)
"$LAB" connman "$ID" stop >/dev/null 2>&1 || true
"$LAB" ofono "$ID" start >/dev/null
"$LAB" daemon "$ID" start --board "$BOARD" -M >/dev/null 2>&1
"$LAB" wait-name "$ID" net.connman 10 >/dev/null
until_ok 30 "oFono's internet context" ctx_type_is internet
x busctl --system call org.ofono "$CTX" org.ofono.ConnectionContext SetProperty sv AccessPointName s internet >/dev/null
until_ok 30 "the cellular service" has_svc
until_ok 30 "both wired uplinks online" wired_online

# 1b: the static path, against the fake oFono (wwan0 = upstream 1)
ID2=bs$$
bench_lab "$ID2"
"$LAB" up "$ID2" 1 --ifnames wwan0 --no-ipv6 >/dev/null
"$LAB" bus "$ID2" start >/dev/null
"$LAB" fakeofono "$ID2" start --modem '{"name":"fake_0","interface":"wwan0","method":"static","address":"198.18.1.50","netmask":"255.255.255.0","gateway":"198.18.1.1","dns":["198.18.1.1"]}' >/dev/null
printf '[Board]\nName=bench-cellular\n\n[Interfaces]\nManage=wwan0\n\n[Interface wwan0]\nTechnology=cellular\n' >"$OUT/board2.conf"
"$LAB" daemon "$ID2" start --board "$OUT/board2.conf" >/dev/null 2>&1
"$LAB" wait-name "$ID2" net.connman 10 >/dev/null
"$LAB" exec "$ID2" connmanctl enable cellular >/dev/null
has_svc2() { "$LAB" exec "$ID2" connmanctl services 2>/dev/null | awk -v id="$SVC" '$NF == id' | grep . >/dev/null; }
no_addr2() { [ -z "$("$LAB" exec "$ID2" ip -4 -o addr show dev wwan0)" ]; }
until_ok 30 "the static cellular service" has_svc2
stotals=(); sshares=()
for r in $(seq 1 "$ROUNDS"); do
    if ! "$LAB" exec "$ID2" /usr/bin/python3 "$HERE/tools/cell_bench.py" "$SVC" /fake_0/context1 60 \
            >"$OUT/static$r.txt" 2>"$OUT/static$r.err"; then
        log "static round $r: Connect failed: $(cat "$OUT/static$r.err")"; continue
    fi
    t() { awk -v k="$1" '$1 == k { print $2 }' "$OUT/static$r.txt"; }
    c=$(t connect); s=$(t setprop); a=$(t active); y=$(t ready)
    if [ -n "$s" ] && [ -n "$a" ] && [ -n "$y" ]; then
        stotals+=("$(awk -v c="$c" -v y="$y" 'BEGIN { printf "%.1f", (y - c) / 1e6 }')")
        sshares+=("$(awk -v c="$c" -v s="$s" -v a="$a" -v y="$y" 'BEGIN { printf "%.2f", ((s - c) + (y - a)) / 1e6 }')")
        log "static round $r: ready after ${stotals[-1]} ms, pathman's share ${sshares[-1]} ms"
    else
        log "static round $r: incomplete timestamps ($(tr '\n' ' ' <"$OUT/static$r.txt"))"
    fi
    "$LAB" exec "$ID2" connmanctl disconnect "$SVC" >/dev/null 2>&1 || true
    until_ok 15 "wwan0's address gone" no_addr2
done
stotal=$(printf '%s\n' "${stotals[@]}" | median)
sshare=$(printf '%s\n' "${sshares[@]}" | median)
"$LAB" daemon "$ID2" stop >/dev/null 2>&1 || true
"$LAB" down "$ID2" >/dev/null

# 2: failover to cellular and back
x connmanctl connect "$SVC" >/dev/null 2>&1
until_ok 30 "cellular online" cell_online
downs=(); ups=()
for r in $(seq 1 "$ROUNDS"); do
    until_ok 30 "a wired default" off_dev dummy0
    # A random point of the checks' 2 s ping cycle (right after "online again" every run
    # would hit the same one): the figure is over the whole cycle.
    sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.3f", rand() * 2 }')"
    "$LAB" link "$ID" 2 blackhole >/dev/null; "$LAB" link "$ID" 3 blackhole >/dev/null
    downs+=("$(wait_ms 60 on_dev dummy0)")
    "$LAB" link "$ID" 2 restore >/dev/null; "$LAB" link "$ID" 3 restore >/dev/null
    ups+=("$(wait_ms 60 off_dev dummy0)")
    log "failover run $r: to cellular ${downs[-1]} ms, back ${ups[-1]} ms"
    until_ok 30 "both wired online again" wired_online
done
ms_s() { awk '{ if ($1 ~ /^[0-9.]+$/) printf "%.2f\n", $1 / 1000; else print $1 }'; }
down_med=$(printf '%s\n' "${downs[@]}" | median | ms_s)
down_worst=$(printf '%s\n' "${downs[@]}" | sort -n | tail -1 | ms_s)
up_worst=$(printf '%s\n' "${ups[@]}" | sort -n | tail -1 | ms_s)

# 3 + 4: steady state
sleep 10   # past the checks the restore started: steady state
INET=$("$LAB" ns "$ID" inet)
bytes() { ip -n "$INET" -s -j link show up1 | python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["stats64"]; print(s["rx"]["bytes"] + s["tx"]["bytes"])'; }
ip netns exec "$INET" tcpdump -i up1 -n -tt -l -U -v >"$OUT/steady.txt" 2>"$OUT/steady.err" &
BENCH_PIDS+=($!)
steady_listening() { grep 'listening on' "$OUT/steady.err" >/dev/null 2>&1; }
until_ok 10 "tcpdump on the Internet side" steady_listening
b0=$(bytes); t0=$(now_ns)
sleep 120
b1=$(bytes); t1=$(now_ns)
# What made those bytes (one line per kind of packet, for the log).
awk '{ $1 = ""; sub(/, id [0-9]+, seq [0-9]+/, ""); sub(/\.[0-9]+ >/, " >"); print }' "$OUT/steady.txt" \
    | sort | uniq -c | sort -rn | sed -n '1,12p' | while read -r line; do log "steady: $line"; done
per_min_l2=$(awk -v a="$b0" -v b="$b1" -v t="$(( (t1 - t0) / 1000000 ))" 'BEGIN { printf "%.0f", (b - a) * 60000 / t }')
# The online check's own cost: IP bytes of packets from or to the cellular address (the
# link also carries the lab's ARP and router solicitations, not pathman's).
CELL_IP=$(x ip -4 -o addr show dev dummy0 | awk '{ split($4, a, "/"); print a[1]; exit }')
per_min=$(awk -v ip="$CELL_IP" -v t="$(( (t1 - t0) / 1000000 ))" '
    /proto .* length [0-9]+\)/ { match($0, /length [0-9]+\)/); len = substr($0, RSTART + 7, RLENGTH - 8); next }
    len && index($0, " " ip) { sum += len } { len = 0 }
    END { printf "%.0f", sum * 60000 / t }' "$OUT/steady.txt")
pid=$("$LAB" daemon "$ID" pid)
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
nready=$(x connmanctl services | awk 'substr($0, 3, 1) ~ /[RO]/' | grep -c . || true)

bench_header "cellular.sh (real ofonod 1.31 + simulated modem, $ROUNDS rounds)"
row_head
row "connect -> ready, DHCP path, ms (median)" "$total" "$cm_total" "(reported)" "-"
row "  the daemon's share, ms (median; pathman's worst $share_worst)" "$share" "$cm_share" "<= 10" "$(verdict "$share" "<=" 10)"
row "connect -> ready, static path (fake oFono), ms" "$stotal" "-" "(reported)" "-" "-"
row "  pathman's share, ms (median)" "$sshare" "-" "<= 10" "$(verdict "$sshare" "<=" 10)" "-"
row "wired Internet black-holed -> default on cellular, s" "$down_med" "-" "<= 3 median" "$(verdict "$down_med" "<=" 3)" "-"
row "  worst of $ROUNDS, s" "$down_worst" "-" "<= 5" "$(verdict "$down_worst" "<=" 5)" "-"
row "wired restored -> default back on wired, worst, s" "$up_worst" "-" "<= 10" "$(verdict "$up_worst" "<=" 10)" "-"
row "cellular online-check IP bytes per minute" "$per_min" "-" "<= 205" "$(verdict "$per_min" "<=" 205)" "-"
row "  all bytes on the link to the Internet (L2)" "$per_min_l2" "-" "(reported)" "-" "-"
row "VmHWM, kB ($nready services ready)" "$hwm" "-" "<= 3072 (musl)" "$(verdict "$hwm" "<=" 3072)" "-"
