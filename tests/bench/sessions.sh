#!/bin/bash
# tests/bench/sessions.sh - the sessions issue's figures (issue 4 targets), each printed with
# its target and verdict, pathman and ConnMan 1.41 side by side where ConnMan has the
# feature. Needs root; runs in labs (tests/lab/lab.sh, 3 uplinks and the "internet"),
# pathman with MultipathRouting, and tears them down on exit, also when interrupted.
#
#   1. CreateSession -> the session's routing table in the kernel, from outside: a GLib
#      D-Bus client in the DUT (tools/session_bench.py) calls CreateSession
#      (AllowedBearers=[ethernet], ConnectionType=any) and `ip -ts monitor route` stamps the
#      first route of a table that did not exist before; median of L (default 50), with the
#      call's round trip. Both daemons (ConnMan 1.41 builds a session table too).
#      pathman also: its own debug timer for the settle step after the call ("settle: U us":
#      rules, routes and the nftables batch), median over the cycles of 2.
#   2. C (default 1000) CreateSession + DestroySession cycles on one connection, both
#      daemons: round trips, then leftover fwmark rules and routing tables (created during
#      the cycles and still there), pathman's nft table, and VmRSS before/after (target:
#      back within 64 kB).
#   3. pathman only (ConnMan 1.41 refuses FlowSelectors: no counterpart): 64 sessions x 16
#      selectors (1024, `*-*-udp-*-PORT`, one pathmanctl client each): time to apply, and
#      UDP packets/s sent from the DUT (tools/udpflood.c: 500k 16-byte datagrams) with no
#      session vs with the 1024 selectors, for packets that match no selector (port 9) and
#      for packets that match one (port 20005); leftovers after the 64 clients exit.
# Usage: sessions.sh [--cycles C] [--latency L] [--out DIR] [--only pathman|connman]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
ARGS=("$@")
CYCLES=1000; LAT=50; ONLY=""; OUT=/tmp/pm-bench/sess-$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
    case "$1" in
        --cycles)  CYCLES=$2; shift ;;
        --latency) LAT=$2; shift ;;
        --out)     OUT=$2; shift ;;
        --only)    ONLY=$2; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "sessions.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_init sessions.sh "$0" "${ARGS[@]+"${ARGS[@]}"}"
mkdir -p "$OUT"
PY=/usr/bin/python3
TOOL=$HERE/tools/session_bench.py
CLIENTS=()
bench_cleanup_hook() { local p; for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null; done; }

rss() { awk '/^VmRSS/ {print $2}' "/proc/$("$LAB" "$DCTL" "$ID" pid)/status"; }
numeric_tables() { "$LAB" exec "$ID" sh -c 'ip route show table all; ip -6 route show table all' | grep -oE 'table [0-9]+' | sort -u; }
leftovers() {   # BASELINE_TABLES_FILE -> "rules tables nft"
    local r t n
    r=$("$LAB" exec "$ID" sh -c 'ip -4 rule; ip -6 rule' | grep -c fwmark || true)
    t=$(comm -13 "$1" <(numeric_tables) | wc -l)
    n=$("$LAB" exec "$ID" nft list tables 2>/dev/null | grep -c pathman || true)
    echo "$r $t $n"
}
n_ready() {
    "$LAB" exec "$ID" busctl --system --json=short call net.connman / net.connman.Manager GetServices 2>/dev/null \
        | grep -oE '"State":\{"type":"s","data":"(ready|online)"\}' | wc -l
}
kv() { awk -v k="$1" '$1 == k {print $2}' "$2" | tail -1; }

side() {   # pathman|connman: lab, latency, cycles -> $OUT/WHO.kv
    local who=$1 kvf=$OUT/$1.kv end
    ID=s$$${who:0:1}; bench_lab "$ID"
    DCTL=daemon; [ "$who" = connman ] && DCTL=connman
    log "$who: lab $ID, 3 uplinks"
    "$LAB" up "$ID" 3 --inet >/dev/null 2>>"$OUT/lab.log"
    "$LAB" bus "$ID" start >/dev/null
    S=$("$LAB" dir "$ID")
    if [ "$who" = pathman ]; then
        "$LAB" daemon "$ID" start --mpathrouting -d=daemon >/dev/null
    else
        "$LAB" connman "$ID" start >/dev/null
    fi
    end=$(( $(now_ns) + 30000000000 ))
    until [ "$(n_ready)" -ge 3 ] || [ "$(now_ns)" -gt $end ]; do sleep 0.1; done
    [ "$(n_ready)" -ge 3 ] || log "$who: not all 3 services ready"
    if [ "$who" = pathman ]; then
        end=$(( $(now_ns) + 30000000000 ))
        until [ "$("$LAB" exec "$ID" ip -4 rule | grep -c 'proto 196')" -ge 3 ] || [ "$(now_ns)" -gt $end ]; do sleep 0.1; done
    fi
    : >"$kvf"
    log "$who: CreateSession -> table, $LAT sessions"
    "$LAB" exec "$ID" "$PY" "$TOOL" latency "$LAT" >>"$kvf" 2>>"$OUT/$who-tool.log" || log "$who: latency run failed"
    numeric_tables >"$OUT/$who-tables-before"
    echo "rss_before $(rss)" >>"$kvf"
    [ "$who" = pathman ] && : >"$S/pathman.log"
    log "$who: $CYCLES create/destroy cycles"
    "$LAB" exec "$ID" "$PY" "$TOOL" cycles "$CYCLES" >>"$kvf" 2>>"$OUT/$who-tool.log" || log "$who: cycles failed"
    # The daemon has answered every DestroySession; its VmRSS now is what the cycles left.
    echo "rss_after $(rss)" >>"$kvf"
    read -r LR LT LN < <(leftovers "$OUT/$who-tables-before")
    echo "left_rules $LR" >>"$kvf"; echo "left_tables $LT" >>"$kvf"; echo "left_nft $LN" >>"$kvf"
    if [ "$who" = pathman ]; then
        # The settle right after "created" carries the new session's rules, routes and nft batch.
        awk '/session .* created/ {want=1; next} want && /settle: [0-9]+ us/ {for(i=1;i<=NF;i++) if($i=="settle:") print $(i+1); want=0}' \
            "$S/pathman.log" >"$OUT/create-settle-us.txt"
        echo "settle_us $(median <"$OUT/create-settle-us.txt")" >>"$kvf"
    fi
}

if [ "$ONLY" != connman ]; then side pathman; fi
# ------------------------------------------------------------------ 3. 64 x 16 selectors
P0_MISS=n/a; P0_HIT=n/a; P1_MISS=n/a; P1_HIT=n/a; PS_MISS=n/a; N_SEL=n/a; APPLY_US=n/a; LR2=n/a; LT2=n/a; LN2=n/a
if [ "$ONLY" != connman ]; then
ID=s$$p; DCTL=daemon; S=$("$LAB" dir "$ID")
# A small C sender (tests/bench/tools/udpflood.c): a Python loop's own cost per packet
# would hide most of the firewall's.
FLOOD=$OUT/udpflood
cc -O2 -o "$FLOOD" "$HERE/tools/udpflood.c"
pps() {   # PORT -> UDP packets/s sent from the DUT (500k 16-byte datagrams, unconnected)
    "$LAB" exec "$ID" "$FLOOD" 198.19.0.1 "$1" 500000
}
log "packets/s without sessions"
P0_MISS=$(pps 9); P0_HIT=$(pps 20005)
: >"$S/pathman.log"
log "64 sessions x 16 selectors"
for ((k = 0; k < 64; k++)); do
    sels=()
    for ((j = 0; j < 16; j++)); do sels+=("*-*-udp-*-$((20000 + k * 16 + j))"); done
    mkfifo "$OUT/in$k"
    "$LAB" exec "$ID" "$PATHMAN" ctl session create --bearers ethernet --flows "${sels[@]}" <"$OUT/in$k" >"$OUT/client$k.log" 2>&1 &
    CLIENTS+=($!)
    exec {fd}>"$OUT/in$k"   # keep the client's stdin open
done
for _ in $(seq 200); do
    [ "$("$LAB" exec "$ID" nft list table inet pathman 2>/dev/null | grep -oE '\b2[0-9]{4}\b' | sort -u | wc -l)" -ge 1024 ] && break
    sleep 0.1
done
N_SEL=$("$LAB" exec "$ID" nft list table inet pathman 2>/dev/null | grep -oE '\b2[0-9]{4}\b' | sort -u | wc -l)
APPLY_US=$(grep -oE 'settle: [0-9]+ us' "$S/pathman.log" | awk '{print $2}' | sort -n | tail -1)
log "packets/s with $N_SEL selectors"
P1_MISS=$(pps 9); P1_HIT=$(pps 20005)
"$LAB" exec "$ID" nft list table inet pathman >"$OUT/nft-1024.txt" 2>&1 || true
for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null || true; done
CLIENTS=()
# Owners gone: every session's objects must go; wait (up to 10 s) for their rules to.
fwmarks() { "$LAB" exec "$ID" sh -c 'ip -4 rule; ip -6 rule' | grep -c fwmark || true; }
end=$(( $(now_ns) + 10000000000 ))
until [ "$(fwmarks)" = 0 ] || [ "$(now_ns)" -gt $end ]; do sleep 0.05; done
read -r LR2 LT2 LN2 < <(leftovers "$OUT/pathman-tables-before")
# The same 64 sessions without selectors: what the sessions themselves cost per packet
# (their SNAT chain turns connection tracking on), to separate it from the selectors'.
log "64 sessions without selectors"
for ((k = 0; k < 64; k++)); do
    "$LAB" exec "$ID" "$PATHMAN" ctl session create --bearers ethernet <"$OUT/in$k" >"$OUT/plain$k.log" 2>&1 &
    CLIENTS+=($!)
done
# All 64 in place: their fwmark rules and the SNAT chain.
end=$(( $(now_ns) + 20000000000 ))
until { [ "$(fwmarks)" -ge 64 ] && [ "$("$LAB" exec "$ID" nft list table inet pathman 2>/dev/null | grep -c 'snat ip to')" -ge 1 ]; } \
    || [ "$(now_ns)" -gt $end ]; do sleep 0.1; done
PS_MISS=$(pps 9)
for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null || true; done
CLIENTS=()

fi
"$LAB" down "s$$p" >/dev/null 2>&1 || true

if [ "$ONLY" != pathman ] && command -v connmand >/dev/null; then side connman; fi

P=$OUT/pathman.kv; C=$OUT/connman.kv
[ -f "$P" ] || : >"$P"; [ -f "$C" ] || : >"$C"
NA="no counterpart"
d_pm=n/a; d_cm=n/a
[ -n "$(kv rss_after "$P")" ] && d_pm=$(( $(kv rss_after "$P") - $(kv rss_before "$P") ))
[ -n "$(kv rss_after "$C")" ] && d_cm=$(( $(kv rss_after "$C") - $(kv rss_before "$C") ))
abs() { awk -v v="$1" 'BEGIN { if (v ~ /^-?[0-9]+$/) print (v < 0 ? -v : v); else print "n/a" }'; }
pps_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && a > 0) printf "%.2f", b/a; else print "n/a" }'; }
{
    bench_header "sessions figures (issue 4 targets)"
    echo "same client and settings for both daemons (GLib D-Bus client in the DUT; AllowedBearers=[ethernet], ConnectionType=any)"
    row_head
    t_pm=$(kv create_to_table_ms "$P"); t_cm=$(kv create_to_table_ms "$C")
    row "CreateSession -> session table in kernel, ms (med/$LAT)" "${t_pm:-n/a}" "${t_cm:-n/a}" "<= 5 ms" "$(verdict "${t_pm:-n/a}" "<=" 5)"
    row "CreateSession round trip, ms (median/$LAT)" "$(kv create_rtt_ms "$P")" "$(kv create_rtt_ms "$C")" "(reported)" "-"
    row "  sessions that got no table (of $LAT)" "$(kv sessions_without_table "$P")" "$(kv sessions_without_table "$C")" "0" "$(verdict "$(kv sessions_without_table "$P")" "==" 0)" "-"
    row "  tables still there after DestroySession" "$(kv tables_left_after_destroy "$P")" "$(kv tables_left_after_destroy "$C")" "0" "$(verdict "$(kv tables_left_after_destroy "$P")" "==" 0)" "-"
    row "pathman's own settle timer after CreateSession, us" "$(kv settle_us "$P")" "$NA" "<= 5000 us" "$(verdict "$(kv settle_us "$P")" "<=" 5000)" "-"
    row "$CYCLES cycles: CreateSession round trip, ms (median)" "$(kv cycles_create_rtt_ms "$P")" "$(kv cycles_create_rtt_ms "$C")" "(reported)" "-"
    row "$CYCLES cycles: DestroySession round trip, ms (median)" "$(kv cycles_destroy_rtt_ms "$P")" "$(kv cycles_destroy_rtt_ms "$C")" "(reported)" "-"
    row "$CYCLES cycles: failed calls" "$(kv cycles_errors "$P")" "$(kv cycles_errors "$C")" "0" "$(verdict "$(kv cycles_errors "$P")" "==" 0)" "-"
    row "after them: leftover fwmark rules" "$(kv left_rules "$P")" "$(kv left_rules "$C")" "0" "$(verdict "$(kv left_rules "$P")" "==" 0)" "-"
    row "after them: leftover routing tables" "$(kv left_tables "$P")" "$(kv left_tables "$C")" "0" "$(verdict "$(kv left_tables "$P")" "==" 0)" "-"
    row "after them: pathman's nft table present" "$(kv left_nft "$P")" "$NA" "0" "$(verdict "$(kv left_nft "$P")" "==" 0)" "-"
    row "VmRSS before cycles, kB" "$(kv rss_before "$P")" "$(kv rss_before "$C")" "(reported)" "-"
    row "VmRSS after cycles, kB" "$(kv rss_after "$P")" "$(kv rss_after "$C")" "(reported)" "-"
    row "VmRSS change, kB" "$d_pm" "$d_cm" "within +-64 kB" "$(verdict "$(abs "$d_pm")" "<=" 64)" "-"
    row "64 x 16 selectors: selectors in nft" "$N_SEL" "$NA" "1024" "$(verdict "$N_SEL" "==" 1024)" "-"
    row "  slowest settle while creating them, us" "$APPLY_US" "$NA" "(reported)" "-" "-"
    r_miss=$(pps_ratio "$P0_MISS" "$P1_MISS"); r_hit=$(pps_ratio "$P0_HIT" "$P1_HIT")
    row "UDP pkt/s, no match: none -> 1024 selectors" "$P0_MISS -> $P1_MISS" "$NA" ">= 0.8 x none" "$(verdict "$r_miss" ">=" 0.8)" "$r_miss"
    row "UDP pkt/s, matching: none -> 1024 selectors" "$P0_HIT -> $P1_HIT" "$NA" ">= 0.8 x none" "$(verdict "$r_hit" ">=" 0.8)" "$r_hit"
    row "UDP pkt/s: 64 sessions w/o selectors -> 1024" "$PS_MISS -> $P1_MISS" "$NA" "(selectors' own cost)" "-" "$(pps_ratio "$PS_MISS" "$P1_MISS")"
    row "after the 64 clients exit: rules / tables / nft" "$LR2 / $LT2 / $LN2" "$NA" "0 / 0 / 0" "$( [ "$LR2 $LT2 $LN2" = "0 0 0" ] && echo met || echo "NOT met")" "-"
    echo "raw data: $OUT"
} | tee "$OUT/summary.txt"
