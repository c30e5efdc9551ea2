#!/bin/bash
# fuzz/seeds/capture.sh - (re)writes the committed fuzz seeds from real sources (root):
# a 2-upstream lab (tests/lab/lab.sh) where pathman --mpathrouting gets its leases from
# dnsmasq, so the DHCP/IPv4-UDP/ARP seeds are dnsmasq's and the kernel's own packets
# (tcpdump on the DUT's interfaces), the rtnl/mptcp seeds are the kernel's dump replies and
# multicast events in the DUT namespace while pathman sets up tables, rules and MPTCP
# endpoints, and the keyfile seeds are the state files pathman wrote plus the repository's
# board configs; D-Bus bodies are marshalled by GLib; flow selectors are written below.
# The lab is removed on exit, also when interrupted. Usage: fuzz/seeds/capture.sh
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LAB=$REPO/tests/lab/lab.sh
PY=/usr/bin/python3
[ "$(id -u)" = 0 ] || { echo "capture.sh: needs root (network namespaces)" >&2; exit 1; }
export PATHMAN=${PATHMAN:-$REPO/target/release/pathman}
[ -x "$PATHMAN" ] || (cd "$REPO" && cargo build --release)

ID=fzs$$; TMP=$(mktemp -d); PIDS=()
cleanup() {
    local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    "$LAB" down "$ID" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$LAB" up "$ID" 2 --inet >/dev/null
"$LAB" bus "$ID" start >/dev/null
DUT=$("$LAB" ns "$ID" dut)
S=$("$LAB" dir "$ID")
for k in 1 2; do
    ifn=$("$LAB" ifname "$ID" "$k")
    ip -n "$DUT" link set "$ifn" up   # tcpdump cannot open a down interface; pathman would set it up
    ip netns exec "$DUT" tcpdump -Z root -U -n -i "$ifn" -w "$TMP/$ifn.pcap" 'udp port 67 or udp port 68 or arp' 2>"$TMP/$ifn.tcpdump.log" &
    PIDS+=($!)
done
ip netns exec "$DUT" "$PY" "$HERE/capture.py" events "$TMP/out" 8 &
EV=$!
sleep 1
"$LAB" daemon "$ID" start --mpathrouting >/dev/null
for _ in $(seq 200); do
    [ "$(ip netns exec "$DUT" ip mptcp endpoint show 2>/dev/null | grep -c subflow)" -ge 2 ] && break
    sleep 0.05
done
ip netns exec "$DUT" ping -c1 -W1 198.18.1.1 >/dev/null 2>&1 || true   # kernel ARP
"$LAB" link "$ID" 2 down; sleep 1; "$LAB" link "$ID" 2 up          # link/route/rule events
wait "$EV" || true
ip netns exec "$DUT" "$PY" "$HERE/capture.py" netlink "$TMP/out"
"$LAB" daemon "$ID" stop >/dev/null
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
PIDS=()
"$PY" "$HERE/capture.py" pcap "$TMP/out" "$TMP"/*.pcap
"$PY" "$HERE/capture.py" dbus "$TMP/out"

mkdir -p "$TMP/out/keyfile" "$TMP/out/flow_selector"
i=0
for f in "$REPO"/board-configs/*.conf "$REPO"/board-configs/main.conf.example $(find "$S/state" -type f -name settings); do
    i=$((i + 1)); cp "$f" "$TMP/out/keyfile/file-$i"
done
# A state dir's files as ConnMan (and pathman) write them.
printf '[global]\nOfflineMode=false\n\n[Wired]\nEnable=true\n' >"$TMP/out/keyfile/settings-global"
printf '[ethernet_02504d000001_cable]\nName=Wired\nAutoConnect=true\nFavorite=true\nModified=2026-01-01T00:00:00Z\nIPv4.method=manual\nIPv4.netmask_prefixlen=24\nIPv4.local_address=10.0.0.2\nIPv4.gateway=10.0.0.1\nIPv4.DHCP.LastAddress=198.18.1.150\nIPv6.method=auto\nNameservers=198.18.1.1;fd18:1::1;\nTimeservers=pool.ntp.org;\nDomains=up1.lab.test;\nMultipathRouting=true\nMultipathTcpLink=backup\n' >"$TMP/out/keyfile/settings-service"
printf '[policy_bench]\nuid=nobody\nAllowedBearers=ethernet cellular\nConnectionType=internet\n' >"$TMP/out/keyfile/policy"
printf '*-*-udp-7777-8888\n' >"$TMP/out/flow_selector/seed-udp"
printf '198.18.0.0/16-*-tcp-*-443\n*-fd19::1-udp-1000:2000-53\n' >"$TMP/out/flow_selector/seed-prefix"
printf '*-*-icmp-*-*\n*-*-6-80-*\n::/0-*-sctp-*-*\n*-*-*-*-*\n' >"$TMP/out/flow_selector/seed-mixed"

for t in dhcpv4 ipv4udp arp rtnl mptcp dbus_value keyfile flow_selector; do
    rm -rf "${HERE:?}/$t"; mkdir -p "$HERE/$t"
    cp "$TMP/out/$t"/* "$HERE/$t/" 2>/dev/null || true
    echo "$t: $(find "$HERE/$t" -type f | wc -l) seeds"
done
