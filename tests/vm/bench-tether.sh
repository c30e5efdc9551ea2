#!/bin/bash
# tests/vm/bench-tether.sh - the tethering benchmark's guest side (run by tests/bench/tether-vm.sh):
# pathman and Debian's connmand 1.41 one after the other in ONE guest, on one real USB gadget
# (dummy_hcd + configfs NCM; the host-side cdc_ncm interface in netns "laptop" is the client).
# Usage: bench-tether.sh ROUNDS PATHMAN [connman]
# Per daemon, ROUNDS rounds of: tests/lab/dhcp_load.py first-offer in the laptop (a DISCOVER
# every 1 ms), SetProperty(Tethering, true) on /net/connman/technology/gadget from dbus-python
# (CLOCK_MONOTONIC before the call), the first OFFER's time; then Tethering false and the bridge
# gone. Then ROUNDS x 4 single-client DISCOVER -> ACK (dhcp_load.py load --count 1).
# Writes <daemon>_on_ms=..., <daemon>_dora_ms=... (space-separated samples) to result.txt.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/guest-lib.sh"
ROUNDS=${1:?usage: bench-tether.sh ROUNDS PATHMAN [connman]}
PATHMAN=${2:?usage: bench-tether.sh ROUNDS PATHMAN [connman]}
CONNMAN=${3:-}
REPO=$(cd "$VM_LIB_DIR/../.." && pwd)
TOOL=$REPO/tests/lab/dhcp_load.py
: >"$VM_OUT/result.txt"
usb_gadget_ncm laptop || { result result fail; exit 1; }
start_private_bus
result kernel "$(uname -r)"

set_tethering() {   # on|off; prints CLOCK_MONOTONIC ns before the call
    /usr/bin/python3 -c "
import dbus, time, sys
t = dbus.Interface(dbus.SystemBus().get_object('net.connman', '/net/connman/technology/gadget', introspect=False),
                   'net.connman.Technology')
t0 = time.monotonic_ns()
t.SetProperty('Tethering', dbus.Boolean(sys.argv[1] == 'on', variant_level=1))
print(t0)" "$1"
}
bridge_gone() { ! ip link show dev tether >/dev/null 2>&1; }
bridge_addr() { ip -4 -o addr show dev tether 2>/dev/null | grep . >/dev/null; }
laptop() { ip netns exec laptop "$@"; }

# start_<daemon> / stop_<daemon>: a fresh daemon with the gadget technology on, tethering off.
start_pathman_d() {
    rm -rf "$VM_RUN/pathman-state"
    start_pathman "$PATHMAN" -i "$GADGET" -d || return 1
}
stop_pathman_d() { kill "$PATHMAN_PID"; wait "$PATHMAN_PID" 2>/dev/null; wait_for 10 bridge_gone || ip link del tether 2>/dev/null; }
start_connman_d() {
    rm -rf "$VM_RUN/connman-state"; mkdir -p "$VM_RUN/connman-state"
    printf '[General]\nTetheringTechnologies=gadget\nPersistentTetheringMode=false\n' >"$VM_RUN/connman-main.conf"
    STATE_DIRECTORY=$VM_RUN/connman-state connmand -n -r -c "$VM_RUN/connman-main.conf" -i "$GADGET" \
        >>"$VM_LOGS/connman.log" 2>&1 &
    CPID=$!
    wait_for 30 has_name net.connman || { vlog "connmand did not take net.connman: $(tail -5 "$VM_LOGS/connman.log")"; return 1; }
    timeout 30 connmanctl enable gadget >/dev/null 2>&1
    return 0
}
stop_connman_d() { kill "$CPID"; wait "$CPID" 2>/dev/null; wait_for 10 bridge_gone || ip link del tether 2>/dev/null; }

# ConnMan 1.41 takes the RTM_DELLINK (family AF_BRIDGE) that a port leaving the bridge sends for
# the gadget's removal, makes the device again, and tethers nothing at the next Tethering=true:
# so every round starts a fresh daemon (for both daemons alike).
measure() {   # measure NAME
    local name=$1 r on=() dora=() t0 t1 ms
    for r in $(seq "$ROUNDS"); do
        "start_${name}_d" || { on+=(n/a); continue; }
        laptop /usr/bin/python3 "$TOOL" --iface "$HOSTIF" --seed "$r" first-offer --interval-ms 1 \
            --max-seconds 20 >"$VM_LOGS/first-$name.txt" 2>&1 &
        local fo=$!
        wait_for 30 grep -q ready "$VM_LOGS/first-$name.txt" || vlog "$name: the first-offer tool is not ready"
        t0=$(set_tethering on)
        wait "$fo" || vlog "$name round $r: no offer: $(tail -2 "$VM_LOGS/first-$name.txt")"
        t1=$(tail -1 "$VM_LOGS/first-$name.txt")
        ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/) printf "%.2f", (b - a) / 1e6; else print "n/a" }')
        vlog "$name round $r: tethering on -> first OFFER $ms ms"
        on+=("$ms")
        set_tethering off >/dev/null
        "stop_${name}_d"
    done
    if "start_${name}_d"; then
        set_tethering on >/dev/null
        wait_for 30 bridge_addr || vlog "$name: the bridge has no address"
        for r in $(seq $((ROUNDS * 4))); do
            ms=$(laptop /usr/bin/python3 "$TOOL" --iface "$HOSTIF" --seed $((100 + r)) load --count 1 \
                | sed -n 's/.*DISCOVER->ACK n=1 min \([0-9.]*\).*/\1/p')
            dora+=("${ms:-n/a}")
        done
        set_tethering off >/dev/null
        "stop_${name}_d"
    fi
    result "${name}_on_ms" "${on[*]}"
    result "${name}_dora_ms" "${dora[*]}"
}

# NAT throughput (pathman only): a LAN port (veth lan0, Role=lan; the client in netns "lanc")
# tethered to an uplink veth (up0, netns "isp", dnsmasq 192.168.77.0/24). iperf3 TCP from the
# client to 192.168.77.1, 5 s runs: through pathman's table (masquerade and its flowtable), the
# kernel's masquerade alone (pathman's table deleted, one nft rule), plain forwarding (no NAT
# rule, a route back to the block in the isp), in the order A B C C B A. Writes nat_mbps,
# masq_mbps, plain_mbps (4 samples each) and nat_flowtable (the flowtable's devices).
nat_bench() {
    ip netns add lanc && ip -n lanc link set lo up || return 1
    ip link add lan0 type veth peer name eth0 netns lanc || return 1
    ip link set lan0 up
    isp_uplink up0 isp 192.168.77.0/24 || return 1
    printf '[Board]\nName=vm-nat\n\n[Interface lan0]\nRole=lan\n' >"$VM_RUN/board-nat.conf"
    rm -rf "$VM_RUN/pathman-state"
    start_pathman "$PATHMAN" -i lan0,up0 --board "$VM_RUN/board-nat.conf" || return 1
    up0_addr() { ip -4 -o addr show dev up0 | awk '{ split($4, a, "/"); print a[1]; exit }'; }
    up0_ready() { up0_addr | grep '^192\.168\.77\.' >/dev/null; }
    wait_for 60 up0_ready || { vlog "nat: up0 has no lease"; return 1; }
    timeout 60 connmanctl tether ethernet on >"$VM_LOGS/nat-tether.txt" 2>&1
    wait_for 30 bridge_addr || { vlog "nat: the bridge has no address"; return 1; }
    ip netns exec lanc bash -c ". '$VM_LIB_DIR/guest-lib.sh'; dhcp_lease eth0 30" || return 1
    local lf=$VM_LOGS/lease-eth0.txt ip router
    ip=$(sed -n 's/^ip=//p' "$lf"); router=$(sed -n 's/^router=//p' "$lf" | cut -d' ' -f1)
    ip -n lanc route replace default via "$router" dev eth0
    listening() { ip netns exec isp ss -ltnH "sport = :5201" | grep 5201 >/dev/null; }
    iperf_runs() {   # iperf_runs N - N 5 s runs, Mbit/s each
        local r
        for r in $(seq "$1"); do
            ip netns exec isp iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
            wait_for 20 listening || vlog "nat: iperf3 server not listening"
            ip netns exec lanc iperf3 -c 192.168.77.1 -p 5201 -t 5 -J 2>/dev/null | /usr/bin/python3 -c \
                'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' || echo n/a
            wait
        done
    }
    local saved=$VM_RUN/pathman-table.nft nat=() masq=() plain=() block=${ip%.*}.0/24 via
    via=$(up0_addr)
    nft list table inet pathman >"$saved" 2>/dev/null
    result nat_flowtable "$(sed -n 's/.*devices = { \(.*\) }.*/\1/p' "$saved" | tr -d ' ')"
    # A B C C B A (2 runs each): the guest's drift under emulation cancels out. Between the
    # legs pathman's own table is deleted and later put back as it was (nft -f of its listing).
    masq_on() { printf 'table ip pm_bench_nat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  ip saddr %s oifname "up0" masquerade\n }\n}\n' "$block" | nft -f -; }
    nat+=($(iperf_runs 2))
    nft delete table inet pathman; masq_on
    masq+=($(iperf_runs 2))
    nft delete table ip pm_bench_nat; ip -n isp route add "$block" via "$via"
    plain+=($(iperf_runs 4))
    ip -n isp route del "$block" via "$via"; masq_on
    masq+=($(iperf_runs 2))
    nft delete table ip pm_bench_nat; nft -f "$saved"
    nat+=($(iperf_runs 2))
    result nat_mbps "${nat[*]}"
    result masq_mbps "${masq[*]}"
    result plain_mbps "${plain[*]}"
    kill "$PATHMAN_PID"; wait "$PATHMAN_PID" 2>/dev/null
}

# The bridge module loaded before either daemon's first round.
modprobe bridge
result pathman_version "$("$PATHMAN" --version 2>&1)"
measure pathman
if [ -n "$CONNMAN" ]; then
    result connman_version "$(connmand --version 2>&1)"
    measure connman
fi
nat_bench || vlog "nat: the NAT throughput part failed (see $VM_LOGS)"
result result pass
