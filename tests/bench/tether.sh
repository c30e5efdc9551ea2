#!/bin/bash
# tests/bench/tether.sh - the tethering issue's figures, each beside its target with a
# verdict, for the binary in PATHMAN (the static musl build when it exists). Needs root; one
# lab (removed on exit): one uplink with an Internet behind (--inet), LAN port lan0 (board
# config Role=lan) with a client namespace behind it.
#
#   1. SetProperty(Tethering, true) sent (dbus-python in the DUT) -> the first OFFER seen by
#      a client that sends a DISCOVER every 1 ms (tests/lab/dhcp_load.py first-offer):
#      bridge, address and server up. R rounds (default 5), median. Target <= 5 ms.
#   2. One client's DISCOVER -> ACK (OFFER and REQUEST between), dhcp_load.py load --count 1,
#      R x 4 rounds, median. Target <= 10 ms.
#   3. 200 clients (distinct chaddrs, one raw socket) lease, renew and release: errors (target
#      0) and pathman's VmHWM growth over it (target <= 100 kB).
#   4. The leases file after SIGKILL at 5 points of a 200-client load: every line well
#      formed, no address twice, and the next pathman reads it without one warning.
#   5. NAT forwarding: iperf3 TCP from the client to the Internet server, 5 s, 3 rounds,
#      median, through pathman's bridge with its masquerade, against the same path with
#      pathman's nft table removed and routes back to the block instead (the kernel's plain
#      forwarding). Target >= 0.9x. Also against the kernel's masquerade alone (a one-rule
#      nft table of the bench's own, with conntrack): what pathman's table adds beyond NAT.
# ConnMan 1.41 is not measured: its ethernet tethering has no notion of LAN ports (it
# enslaves the ethernet devices it tethers, the uplink among them), so the lab cannot run
# the same setup.
# Usage: tether.sh [--rounds R]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
ARGS=("$@")
ROUNDS=5
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "tether.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_init tether.sh "$0" "${ARGS[@]+"${ARGS[@]}"}"
ID=bt$$
bench_lab "$ID"
OUT=$(mktemp -d /tmp/pm-bench-tether.XXXXXX)
bench_cleanup_hook() { rm -rf "$OUT"; }
TOOL=$REPO/tests/lab/dhcp_load.py

x() { "$LAB" exec "$ID" "$@"; }
client() { "$LAB" lan "$ID" exec lan0 "$@"; }
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$("$LAB" daemon "$ID" pid)/status"; }
start_pathman() {
    "$LAB" daemon "$ID" start --board "$OUT/board.conf" -c "$OUT/main.conf" >/dev/null
    "$LAB" wait-name "$ID" net.connman 10 >/dev/null
    for _ in $(seq 200); do
        [[ $(x ip -4 -o addr show dev eth0) == *198.18.1.* ]] && return 0
        sleep 0.05
    done
    log "the uplink got no address"; return 1
}
set_tethering() {   # on|off: SetProperty from dbus-python; prints the monotonic ns before it
    x /usr/bin/python3 -c "
import dbus, time, sys
t = dbus.Interface(dbus.SystemBus().get_object('net.connman', '/net/connman/technology/ethernet', introspect=False),
                   'net.connman.Technology')
t0 = time.monotonic_ns()
t.SetProperty('Tethering', dbus.Boolean(sys.argv[1] == 'on', variant_level=1))
print(t0)" "$1"
}
bridge_gone() { ! x ip link show tether >/dev/null 2>&1; }
wait_until() { local n; for n in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }

log "lab $ID"
"$LAB" up "$ID" 1 --inet --no-ipv6 >/dev/null
"$LAB" lan "$ID" add lan0 >/dev/null
"$LAB" bus "$ID" start >/dev/null
printf '[Board]\nName=bench-tether\n\n[Interface lan*]\nRole=lan\n' >"$OUT/board.conf"
printf '[General]\nTetheringLeaseTime=3600\n' >"$OUT/main.conf"
start_pathman

# 1. Tethering on -> first OFFER.
on=()
for r in $(seq "$ROUNDS"); do
    client python3 "$TOOL" --iface eth0 --seed "$r" first-offer --interval-ms 1 --max-seconds 10 \
        >"$OUT/first.txt" 2>&1 &
    fo=$!
    for _ in $(seq 100); do grep -q ready "$OUT/first.txt" && break; sleep 0.02; done
    t0=$(set_tethering on)
    wait "$fo" || { log "round $r: no offer"; cat "$OUT/first.txt" >&2; }
    t1=$(tail -1 "$OUT/first.txt")
    ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { if (b ~ /^[0-9]+$/) printf "%.2f", (b - a) / 1e6; else print "n/a" }')
    log "round $r: tethering on -> first OFFER $ms ms"
    on+=("$ms")
    set_tethering off >/dev/null
    wait_until bridge_gone
done
on_med=$(printf '%s\n' "${on[@]}" | median)
on_worst=$(printf '%s\n' "${on[@]}" | sort -n | tail -1)

# 2. One client's DORA.
set_tethering on >/dev/null
wait_until x ip -4 -o addr show dev tether
dora=()
for r in $(seq $((ROUNDS * 4))); do
    ms=$(client python3 "$TOOL" --iface eth0 --seed $((100 + r)) load --count 1 \
        | sed -n 's/.*DISCOVER->ACK n=1 min \([0-9.]*\).*/\1/p')
    dora+=("${ms:-n/a}")
done
log "DISCOVER -> ACK, ms: ${dora[*]}"
dora_med=$(printf '%s\n' "${dora[@]}" | median)

# 3. 200 clients.
h0=$(hwm)
client python3 "$TOOL" --iface eth0 --seed 7 load --count 200 --renew --release >"$OUT/load.txt" 2>&1 || true
cat "$OUT/load.txt" >&2
h1=$(hwm)
load_errors=$(awk '/^(dora|renew):/ { sub(/.*ok, /, ""); sum += $1 } END { print sum + 0 }' "$OUT/load.txt")
grep -q '^dora: 200/200' "$OUT/load.txt" || load_errors=$((load_errors + 1))
grow=$((h1 - h0))

# 4. SIGKILL during a load: the leases file stays whole.
check_leases() {
    /usr/bin/python3 - "$1" <<'EOF'
import ipaddress, sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[0] == "pathman-leases 1", lines[0]
seen = set()
for l in lines[1:]:
    if not l:
        continue
    f = l.split(" ")
    assert len(f) == 5, l
    ipaddress.IPv4Address(f[0])
    assert f[0] not in seen, l
    seen.add(f[0])
    int(f[3])
print(len(seen))
EOF
}
kill_bad=0
for delay in 0.02 0.05 0.1 0.2 0.4; do
    client python3 "$TOOL" --iface eth0 --seed "${delay#0.}" load --count 200 --timeout 5 >/dev/null 2>&1 &
    lp=$!
    sleep "$delay"
    "$LAB" daemon "$ID" kill >/dev/null
    wait "$lp" || true
    n=$(check_leases "$("$LAB" dir "$ID")/state/tether.leases" 2>"$OUT/check.txt") \
        || { kill_bad=$((kill_bad + 1)); cat "$OUT/check.txt" >&2; }
    before=$(grep -c 'tether.leases' "$("$LAB" dir "$ID")/pathman.log" || true)
    start_pathman
    set_tethering on >/dev/null 2>&1 || true
    wait_until x ip -4 -o addr show dev tether
    sleep 0.3
    after=$(grep -c 'tether.leases' "$("$LAB" dir "$ID")/pathman.log" || true)
    [ "$after" = "$before" ] || { kill_bad=$((kill_bad + 1)); grep 'tether.leases' "$("$LAB" dir "$ID")/pathman.log" | tail -3 >&2; }
    log "SIGKILL after ${delay} s: $n leases in the file, read back without warnings: $([ "$after" = "$before" ] && echo yes || echo no)"
done

# 5. NAT throughput against plain forwarding.
INET_NS=$("$LAB" ns "$ID" inet)
UP_NS=$("$LAB" ns "$ID" 1)
"$LAB" lan "$ID" client lan0 udhcpc start >/dev/null
wait_until client ip -4 -o addr show dev eth0 scope global
iperf() {
    local r vals=()
    for r in 1 2 3; do
        ip netns exec "$INET_NS" iperf3 -s -D -B 198.19.0.1 -1 >/dev/null 2>&1
        sleep 0.2
        vals+=("$(client iperf3 -c 198.19.0.1 -t 5 -J 2>/dev/null | /usr/bin/python3 -c \
            'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' || echo n/a)")
    done
    printf '%s\n' "${vals[@]}" | median
}
nat=$(iperf)
x nft delete table inet pathman
# The kernel's own masquerade alone (one rule, conntrack): what NAT costs without pathman.
x nft -f - <<NFT
table ip pm_bench_nat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 192.168.0.0/24 oifname "eth0" masquerade
    }
}
NFT
masq=$(iperf)
x nft delete table ip pm_bench_nat
dut=$(x ip -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1]; exit }')
ip -n "$UP_NS" route add 192.168.0.0/24 via "$dut"
ip -n "$INET_NS" route add 192.168.0.0/24 via 198.19.1.2
plain=$(iperf)
nat_ratio=$(ratio "$nat" "$plain")
masq_ratio=$(ratio "$masq" "$plain")
own_ratio=$(ratio "$nat" "$masq")

bench_header "tether.sh ($ROUNDS rounds)"
row_head
row "tethering on -> first OFFER to a client, ms (median)" "$on_med" "-" "<= 5" "$(verdict "$on_med" "<=" 5)" "-"
row "  worst of $ROUNDS, ms" "$on_worst" "-" "(reported)" "-" "-"
row "client DISCOVER -> ACK, ms (median of $((ROUNDS * 4)))" "$dora_med" "-" "<= 10" "$(verdict "$dora_med" "<=" 10)" "-"
row "200 clients lease/renew/release: errors" "$load_errors" "-" "0" "$(verdict "$load_errors" "==" 0)" "-"
row "  VmHWM growth over it, kB ($h0 -> $h1)" "$grow" "-" "<= 100" "$(verdict "$grow" "<=" 100)" "-"
row "leases file broken after SIGKILL (of 5)" "$kill_bad" "-" "0" "$(verdict "$kill_bad" "==" 0)" "-"
row "NAT forwarding, Mbit/s (plain forwarding $plain)" "$nat" "-" ">= 0.9x" "$(verdict "$nat_ratio" ">=" 0.9)" "$nat_ratio"
row "  the kernel's masquerade alone (one nft rule), Mbit/s" "$masq" "-" "(reported)" "-" "$masq_ratio"
row "  pathman's table against that masquerade alone" "$nat" "-" ">= 0.9x" "$(verdict "$own_ratio" ">=" 0.9)" "$own_ratio"
