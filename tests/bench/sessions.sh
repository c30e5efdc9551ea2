#!/bin/bash
# tests/bench/sessions.sh - the sessions issue's figures (pathman only; ConnMan 1.41 has no
# flow selectors or MultipathRoutedServices). Needs root; runs in a lab (tests/lab/lab.sh,
# 3 uplinks with MultipathRouting and the "internet") and tears it down on exit.
#
#   1. CreateSession -> its rules, routes and nftables objects in the kernel: pathman's
#      own debug line for the settle step after the call ("settle: U us": reconcile of
#      rules/routes + the nftables batch); median over C create/destroy cycles.
#   2. C (default 1000) create/destroy cycles: each is a `busctl call CreateSession`
#      (with one flow selector) whose connection then closes, which destroys the session.
#      Afterwards: leftover fwmark rules, session tables, nft table (all must be 0), and
#      the daemon's VmRSS before and after (must be within 64 kB).
#   3. 64 sessions x 16 selectors (1024 in all, `*-*-udp-*-PORT`): time to apply the last
#      one (settle line), and UDP packets/s sent from the DUT (tools/udpflood.c: 500k
#      16-byte datagrams) with no session vs with the 1024 selectors, for packets that match
#      no selector (port 9) and for packets that match one (port 20005).
# Usage: sessions.sh [--cycles C] [--out DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LAB=$REPO/tests/lab/lab.sh
CYCLES=1000; OUT=/tmp/pm-bench/sess-$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
    case "$1" in
        --cycles) CYCLES=$2; shift ;;
        --out)    OUT=$2; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "sessions.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "sessions.sh: needs root" >&2; exit 1; }
mkdir -p "$OUT"
# The product binary (static musl) when it is built, else the host build.
MUSL=$REPO/target/x86_64-unknown-linux-musl/release/pathman
if [ -z "${PATHMAN:-}" ] && [ -x "$MUSL" ]; then PATHMAN=$MUSL; fi
export PATHMAN=${PATHMAN:-$REPO/target/release/pathman}
[ -x "$PATHMAN" ] || (cd "$REPO" && cargo build --release)
PY=/usr/bin/python3

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
ID=s$$; CLIENTS=()
cleanup() {
    local p; for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null || true; done
    "$LAB" down "$ID" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
median() {
    sort -n | awk '/^[0-9.]+$/ {v[n++]=$1} END {
        if (n == 0) { print "n/a"; exit }
        if (n % 2) printf "%.1f\n", v[(n-1)/2]; else printf "%.1f\n", (v[n/2-1]+v[n/2])/2 }'
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$("$LAB" daemon "$ID" pid)/status"; }
leftovers() {
    local r t n
    r=$("$LAB" exec "$ID" sh -c 'ip -4 rule; ip -6 rule' | grep -c fwmark || true)
    t=$("$LAB" exec "$ID" ip route show table all | grep -cE 'table 6(5[5-9]|[6-9])[0-9]{2}' || true)
    n=$("$LAB" exec "$ID" nft list tables | grep -c pathman || true)
    echo "$r $t $n"
}

log "lab $ID: 3 uplinks"
"$LAB" up "$ID" 3 --inet >/dev/null 2>"$OUT/lab.log"
"$LAB" bus "$ID" start >/dev/null
S=$("$LAB" dir "$ID")
"$LAB" daemon "$ID" start --mpathrouting -d=daemon >/dev/null
for _ in $(seq 100); do
    [ "$("$LAB" exec "$ID" ip -4 rule | grep -c 'proto 196')" -ge 3 ] && break; sleep 0.1
done
sleep 1

# ------------------------------------------------------------------ 1+2. cycles
RSS0=$(rss)
: >"$S/pathman.log"
log "$CYCLES create/destroy cycles"
t0=$(date +%s%N)
for ((i = 1; i <= CYCLES; i++)); do
    "$LAB" exec "$ID" busctl --system call net.connman / net.connman.Manager CreateSession \
        'a{sv}o' 2 AllowedBearers as 1 ethernet FlowSelectors as 1 '*-*-udp-*-8888' /bench >/dev/null
done
CYCLE_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
sleep 1
RSS1=$(rss)
read -r LR LT LN < <(leftovers)
# The settle right after "created" carries the new session's rules, routes and nft batch.
awk '/session .* created/ {want=1; next} want && /settle: [0-9]+ us/ {for(i=1;i<=NF;i++) if($i=="settle:") print $(i+1); want=0}' \
    "$S/pathman.log" >"$OUT/create-settle-us.txt"
CREATE_US=$(median <"$OUT/create-settle-us.txt")

# ------------------------------------------------------------------ 3. 64 x 16 selectors
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
sleep 2
read -r LR2 LT2 LN2 < <(leftovers)
# The same 64 sessions without selectors: what the sessions themselves cost per packet
# (their SNAT chain turns connection tracking on), to separate it from the selectors'.
log "64 sessions without selectors"
for ((k = 0; k < 64; k++)); do
    "$LAB" exec "$ID" "$PATHMAN" ctl session create --bearers ethernet <"$OUT/in$k" >"$OUT/plain$k.log" 2>&1 &
    CLIENTS+=($!)
done
for _ in $(seq 100); do
    [ "$("$LAB" exec "$ID" nft list table inet pathman 2>/dev/null | grep -c 'snat ip to')" -ge 1 ] && break; sleep 0.1
done
sleep 1
PS_MISS=$(pps 9)
for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null || true; done
CLIENTS=()

{
echo "sessions figures, $(date -Iseconds), $(uname -r), $(nproc) cores"
printf '%-58s %s\n' "CreateSession -> rules+routes+nft, median us (of $CYCLES)" "$CREATE_US"
printf '%-58s %s\n' "$CYCLES create/destroy cycles, total ms (busctl each)" "$CYCLE_MS"
printf '%-58s %s\n' "after them: leftover fwmark rules / session tables / nft" "$LR / $LT / $LN"
printf '%-58s %s\n' "daemon VmRSS before / after, kB" "$RSS0 / $RSS1 (diff $((RSS1 - RSS0)))"
printf '%-58s %s\n' "64 sessions x 16 selectors: selectors in nft" "$N_SEL"
printf '%-58s %s\n' "  slowest settle while creating them (last applies 1024), us" "$APPLY_US"
printf '%-58s %s\n' "UDP pkt/s, no match: none / 1024 selectors / ratio" "$P0_MISS / $P1_MISS / $(awk -v a="$P0_MISS" -v b="$P1_MISS" 'BEGIN{printf "%.2f", b/a}')"
printf '%-58s %s\n' "UDP pkt/s, matching: none / 1024 selectors / ratio" "$P0_HIT / $P1_HIT / $(awk -v a="$P0_HIT" -v b="$P1_HIT" 'BEGIN{printf "%.2f", b/a}')"
printf '%-58s %s\n' "UDP pkt/s, 64 sessions without selectors / 1024 / ratio" "$PS_MISS / $P1_MISS / $(awk -v a="$PS_MISS" -v b="$P1_MISS" 'BEGIN{printf "%.2f", b/a}')"
printf '%-58s %s\n' "after the 64 clients exit: rules / tables / nft" "$LR2 / $LT2 / $LN2"
} | tee "$OUT/summary.txt"
