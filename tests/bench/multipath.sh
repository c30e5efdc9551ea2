#!/bin/bash
# tests/bench/multipath.sh - the multipath issue's figures (issue 3 targets), each printed
# with its target and verdict. Needs root; everything runs in lab namespaces
# (tests/lab/lab.sh) and is torn down on exit, also when interrupted.
#
#   1. aggregate throughput of ONE MPTCP connection (iperf3 under mptcpize, server in the
#      lab's "internet") over 2 uplinks rate-limited to 20 Mbit/s each, pathman started
#      with --mpathrouting and nothing else; plain TCP for comparison; ratio to the 40 Mbit/s
#      physical sum. Median of R runs (default 3) of S seconds (default 10). The same
#      transfer with ConnMan 1.41 managing the same two uplinks: it builds no per-uplink
#      tables, rules or MPTCP endpoints, so the connection gets one path (that is the
#      comparison).
#   2. address -> its table, rule and MPTCP endpoint in the kernel: pathman's reconcile
#      passes that add an address also add the table routes, the rule and the endpoint;
#      their duration comes from pathman's own debug line ("reconcile: N netlink ops,
#      M endpoint ops in U us"); median over every such pass of 5 cold starts.
#   3. 8 uplinks with MultipathRouting (--no-ipv6, so 8 endpoints fit the kernel's cap):
#      time from start until all 8 tables, rules and endpoints exist (polled every 10 ms),
#      with the reconcile passes and requests it took; then one carrier flap of uplink 3:
#      netlink + endpoint requests it cost, and the rule events `ip monitor rule` saw
#      (2 = only that uplink's rule went and came back: no churn of the others).
#   Figures 2 and 3 have no ConnMan counterpart (it makes no per-uplink tables, rules or
#   endpoints); the table says so.
# Usage: multipath.sh [--runs R] [--secs S] [--out DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
ARGS=("$@")
RUNS=3; SECS=10; OUT=/tmp/pm-bench/mp-$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift ;;
        --secs) SECS=$2; shift ;;
        --out)  OUT=$2; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "multipath.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_init multipath.sh "$0" "${ARGS[@]+"${ARGS[@]}"}"
mkdir -p "$OUT"
SERVER=""
bench_cleanup_hook() { [ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null; }
wait_until() {   # SECONDS CMD...
    local end=$(( $(now_ns) + $1 * 1000000000 )); shift
    until "$@" >/dev/null 2>&1; do [ "$(now_ns)" -lt "$end" ] || return 1; sleep 0.01; done
}
n_endpoints() { "$LAB" exec "$ID" ip mptcp endpoint show | grep -c subflow || true; }
n_rules() { "$LAB" exec "$ID" ip -4 rule | grep -c 'proto 196' || true; }

# ------------------------------------------------------------------ 1. throughput
iperf() {   # [mptcpize run] -> Mbit/s received
    local out
    out=$("$LAB" exec "$ID" "$@" iperf3 -c 198.19.0.1 -p 5201 -t "$SECS" -J 2>/dev/null) || { echo n/a; return; }
    /usr/bin/python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6, 1))' <<<"$out" 2>/dev/null || echo n/a
}
n_ready() {   # services ready/online on the lab bus
    "$LAB" exec "$ID" busctl --system --json=short call net.connman / net.connman.Manager GetServices 2>/dev/null \
        | grep -oE '"State":\{"type":"s","data":"(ready|online)"\}' | wc -l
}
throughput() {   # pathman|connman -> writes $OUT/throughput-WHO.txt
    local who=$1 r m t
    ID=m$$${who:0:1}; bench_lab "$ID"
    log "throughput ($who): lab $ID, 2 uplinks at 20 Mbit/s"
    "$LAB" up "$ID" 2 --inet --rate 20mbit >/dev/null 2>>"$OUT/lab.log"
    "$LAB" bus "$ID" start >/dev/null
    if [ "$who" = pathman ]; then
        "$LAB" daemon "$ID" start --mpathrouting >/dev/null
        wait_until 20 sh -c "[ \$($LAB exec $ID ip mptcp endpoint show | grep -c 'dev eth') -ge 2 ]" || log "$who: endpoints missing"
    else
        "$LAB" connman "$ID" start >/dev/null
    fi
    wait_until 30 sh -c "[ \$(ip -n pm-$ID-dut -4 -o addr show | grep -c 'inet 198\.18\.') -ge 2 ]" || log "$who: addresses missing"
    local end=$(( $(now_ns) + 30000000000 ))
    until [ "$(n_ready)" -ge 2 ] || [ "$(now_ns)" -gt $end ]; do sleep 0.1; done
    ip netns exec "$("$LAB" ns "$ID" inet)" mptcpize run iperf3 -s -p 5201 >/dev/null 2>&1 &
    SERVER=$!
    wait_until 10 sh -c "ip netns exec $("$LAB" ns "$ID" inet) ss -Hltn 'sport = :5201' | grep . >/dev/null" || log "iperf3 server not listening"
    : >"$OUT/throughput-$who.txt"
    for ((r = 1; r <= RUNS; r++)); do
        m=$(iperf mptcpize run); t=$(iperf)
        echo "run $r: mptcp $m Mbit/s, tcp $t Mbit/s" | tee -a "$OUT/throughput-$who.txt" >&2
    done
    "$LAB" exec "$ID" ip mptcp endpoint show >"$OUT/endpoints-$who.txt" 2>&1 || true
    kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=""
    "$LAB" down "$ID" >/dev/null 2>&1
}
throughput pathman
MPTCP=$(awk '{print $4}' "$OUT/throughput-pathman.txt" | median)
TCP=$(awk '{print $7}' "$OUT/throughput-pathman.txt" | median)
CM_MPTCP=n/a; CM_TCP=n/a
if command -v connmand >/dev/null; then
    throughput connman
    CM_MPTCP=$(awk '{print $4}' "$OUT/throughput-connman.txt" | median)
    CM_TCP=$(awk '{print $7}' "$OUT/throughput-connman.txt" | median)
fi

# ------------------------------------------------------------------ 2. address -> table, rule, endpoint
ID=m$$b; bench_lab "$ID"
log "address -> table/rule/endpoint: lab $ID, 2 uplinks, 5 cold starts"
"$LAB" up "$ID" 2 >/dev/null 2>>"$OUT/lab.log"
"$LAB" bus "$ID" start >/dev/null
S=$("$LAB" dir "$ID")
: >"$OUT/addr-passes.txt"
for ((r = 1; r <= 5; r++)); do
    "$LAB" reset "$ID" >/dev/null 2>&1
    "$LAB" daemon "$ID" start --mpathrouting -d=daemon >/dev/null
    wait_until 20 sh -c "[ \$($LAB exec $ID ip mptcp endpoint show | grep -c 'dev eth') -ge 4 ]" || log "run $r: endpoints missing"
    "$LAB" daemon "$ID" stop >/dev/null
    # A pass that adds an address and its endpoint: >= 4 netlink ops (address, 2 table routes,
    # rule, main default) and >= 1 endpoint op.
    grep -oE 'reconcile: [0-9]+ netlink ops, [1-9][0-9]* endpoint ops in [0-9]+ us' "$S/pathman.log" \
        | awk '$2 >= 4 {print $9}' >>"$OUT/addr-passes.txt"
    : >"$S/pathman.log"
done
ADDR_US=$(median <"$OUT/addr-passes.txt")
"$LAB" down "$ID" >/dev/null 2>&1

# ------------------------------------------------------------------ 3. 8 uplinks
ID=m$$c; bench_lab "$ID"
log "8 uplinks: lab $ID"
"$LAB" up "$ID" 8 --no-ipv6 >/dev/null 2>>"$OUT/lab.log"
"$LAB" bus "$ID" start >/dev/null
S=$("$LAB" dir "$ID")
"$LAB" daemon "$ID" start --mpathrouting -d=daemon >/dev/null
t0=$(cat "$S/pathman.t0")
wait_until 30 sh -c "[ \$($LAB exec $ID ip mptcp endpoint show | grep -c subflow) -ge 8 ] && [ \$($LAB exec $ID ip -4 rule | grep -c 'proto 196') -ge 8 ]" \
    || log "8 uplinks: not all up"
T8=$(( ($(now_ns) - t0) / 1000000 ))
PASSES8=$(grep -c 'reconcile: ' "$S/pathman.log" || true)
read -r OPS8 EPS8 US8 < <(grep -oE 'reconcile: [0-9]+ netlink ops, [0-9]+ endpoint ops in [0-9]+ us' "$S/pathman.log" \
    | awk '{o+=$2; e+=$5; u+=$9} END {print o+0, e+0, u+0}')
sleep 1
: >"$S/pathman.log"
DUTNS=pm-$ID-dut
ip netns exec "$DUTNS" ip -ts monitor rule >"$OUT/flap-rules.txt" 2>&1 &
MON=$!; BENCH_PIDS+=("$MON")
sleep 0.3
"$LAB" link "$ID" 3 down
wait_until 10 sh -c "[ \$($LAB exec $ID ip -4 rule | grep -c 'proto 196') -eq 7 ]" || log "flap: rule not removed"
"$LAB" link "$ID" 3 up
wait_until 10 sh -c "[ \$($LAB exec $ID ip -4 rule | grep -c 'proto 196') -eq 8 ] && [ \$($LAB exec $ID ip mptcp endpoint show | grep -c subflow) -eq 8 ]" \
    || log "flap: uplink 3 not restored"
sleep 0.5
kill "$MON" 2>/dev/null || true
read -r FOPS FEPS FUS < <(grep -oE 'reconcile: [0-9]+ netlink ops, [0-9]+ endpoint ops in [0-9]+ us' "$S/pathman.log" \
    | awk '{o+=$2; e+=$5; u+=$9} END {print o+0, e+0, u+0}')
FRULES=$(grep -c 'from' "$OUT/flap-rules.txt" || true)
OTHER=$(grep 'from' "$OUT/flap-rules.txt" | grep -vc "198\.18\.3\." || true)

NA="no counterpart"
{
    bench_header "multipath figures (issue 3 targets)"
    echo "ConnMan 1.41 has no per-uplink tables, rules or MPTCP endpoints: its MPTCP figure is the same transfer over the uplinks it manages (one path)"
    row_head
    row "MPTCP, 1 connection over 2x20 Mbit/s, Mbit/s (median/$RUNS)" "$MPTCP" "$CM_MPTCP" ">= 36 (0.9 x 40)" "$(verdict "$MPTCP" ">=" 36)"
    row "  ratio to the 40 Mbit/s sum" "$(ratio "$MPTCP" 40)" "$(ratio "$CM_MPTCP" 40)" ">= 0.90" "$(verdict "$(ratio "$MPTCP" 40)" ">=" 0.9)" "-"
    row "plain TCP, same path, Mbit/s (median)" "$TCP" "$CM_TCP" "(reference)" "-"
    row "address -> table+rule+endpoint, us (median)" "$ADDR_US" "$NA" "<= 5000 us" "$(verdict "$ADDR_US" "<=" 5000)" "-"
    row "8 uplinks: start -> 8 tables/rules/endpoints, ms" "$T8" "$NA" "(reported)" "-" "-"
    row "8 uplinks: reconcile passes" "$PASSES8" "$NA" "(reported)" "-" "-"
    row "8 uplinks: netlink / endpoint requests" "$OPS8 / $EPS8" "$NA" "(reported)" "-" "-"
    row "8 uplinks: time spent reconciling, us" "$US8" "$NA" "(reported)" "-" "-"
    row "1 flap of 8: netlink / endpoint requests" "$FOPS / $FEPS" "$NA" "(reported)" "-" "-"
    row "1 flap of 8: rule events of that uplink" "$((FRULES - OTHER))" "$NA" "2 (del + add)" "$(verdict "$((FRULES - OTHER))" "==" 2)" "-"
    row "1 flap of 8: rule events of the other 7" "$OTHER" "$NA" "0 (no churn)" "$(verdict "$OTHER" "==" 0)" "-"
    echo "raw data: $OUT"
} | tee "$OUT/summary.txt"
