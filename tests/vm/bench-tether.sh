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

# The bridge module loaded before either daemon's first round.
modprobe bridge
result pathman_version "$("$PATHMAN" --version 2>&1)"
measure pathman
if [ -n "$CONNMAN" ]; then
    result connman_version "$(connmand --version 2>&1)"
    measure connman
fi
result result pass
