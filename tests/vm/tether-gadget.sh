#!/bin/bash
# tests/vm/tether-gadget.sh - USB-gadget tethering on a real USB gadget (guest script: vm.sh run
# OUT tether-gadget.sh PATHMAN). dummy_hcd (a software USB host and device controller) with a
# configfs NCM function: the gadget side is usb0 (DEVTYPE gadget, pathman's), the host side is
# the cdc_ncm interface the kernel's USB host stack binds, moved into netns "laptop" (the
# computer the board is plugged into). pathman's uplink is a veth (up0) to netns "isp", where
# dnsmasq serves 192.168.77.0/24; 192.168.77.1 has no route back to the tether block.
# Debian's connmanctl drives pathman: usb0 is a gadget uplink first; `tether gadget on` takes it
# from the uplinks and bridges it; the laptop leases from pathman's DHCP server (busybox udhcpc)
# over USB and pings the isp through the NAT; `tether gadget off` gives usb0 back as an uplink.
# Writes key=value lines to $VM_OUT/result.txt (result=pass last); exit 0 only when all passed.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/guest-lib.sh"
PATHMAN=${1:?usage: tether-gadget.sh PATHMAN}
: >"$VM_OUT/result.txt"
STEP=setup PASSED=0
fail() { STEP=$1; vlog "tether-gadget: FAILED at $1${2:+: $2}"; [ -n "${2:-}" ] && result why "$2"; exit 1; }
finish() {
    [ $PASSED = 1 ] || { result failed_step "$STEP"; result result fail; }
    [ -n "${PATHMAN_PID:-}" ] && kill "$PATHMAN_PID" 2>/dev/null
}
trap finish EXIT

STEP=gadget
usb_gadget_ncm laptop || fail gadget
result gadget_ifname "$GADGET"
result gadget_devtype "$(sed -n 's/^DEVTYPE=//p' "/sys/class/net/$GADGET/uevent")"
result host_ifname "$HOSTIF"

STEP=uplink
isp_uplink up0 isp 192.168.77.0/24 || fail uplink
STEP=bus; start_private_bus || fail bus
STEP=pathman; start_pathman "$PATHMAN" -i "$GADGET,up0" -d || fail pathman

ctl() { timeout 60 connmanctl "$@" 2>&1; }
addr4() { ip -4 -o addr show dev "$1" 2>/dev/null | awk '{print $4}' | sed -n 1p; }
has_addr() { addr4 "$1" | grep "^$2" >/dev/null; }
master() { ip -o link show dev "$1" 2>/dev/null | sed -n 's/.* master \([^ ]*\) .*/\1/p'; }
bridged() { [ "$(master "$GADGET")" = tether ]; }
unbridged() { [ -z "$(master "$GADGET")" ]; }
gadget_service() { ctl services | grep gadget_ >/dev/null; }
no_gadget_service() { ! gadget_service; }

STEP=enable
out=$(ctl enable gadget); result enable "$(echo "$out" | tr "\n" "|")"
echo "$out" | grep -i -E "Enabled gadget|already enabled" >/dev/null || fail enable "$out"
wait_for 60 has_addr up0 192.168.77. || fail uplink_ready "up0: $(addr4 up0)"
STEP=gadget_uplink
wait_for 30 gadget_service || fail gadget_uplink "$(ctl services | tr '\n' '|')"
result gadget_uplink "$(ctl services | grep gadget_ | tr -s ' ')"

STEP=tether_on
out=$(ctl tether gadget on); result tether_on "$(echo "$out" | tr "\n" "|")"
echo "$out" | grep "Enabled tethering for gadget" >/dev/null || fail tether_on "$out"
wait_for 30 bridged || fail bridged "$GADGET master '$(master "$GADGET")'"
wait_for 30 no_gadget_service || fail no_uplink "$(ctl services | tr '\n' '|')"
wait_for 30 has_addr tether 192.168. || fail bridge_address "tether: $(addr4 tether)"
result bridge_address "$(addr4 tether)"

STEP=laptop_lease
in_ns laptop bash -c ". '$VM_LIB_DIR/guest-lib.sh'; dhcp_lease '$HOSTIF' 30" || fail laptop_lease
LEASE_IP=$(sed -n 's/^ip=//p' "$VM_LOGS/lease-$HOSTIF.txt")
LEASE_ROUTER=$(sed -n 's/^router=//p' "$VM_LOGS/lease-$HOSTIF.txt" | cut -d' ' -f1)
result lease_ip "$LEASE_IP"; result lease_router "$LEASE_ROUTER"
STEP=laptop_internet
in_ns laptop ip route replace default via "$LEASE_ROUTER" dev "$HOSTIF" || fail laptop_internet "no default route"
if in_ns laptop busybox ping -c 3 -i 0.2 -w 20 192.168.77.1 >"$VM_LOGS/ping-laptop.txt" 2>&1; then
    result laptop_ping ok
else
    result laptop_ping fail; fail laptop_internet "$(tail -2 "$VM_LOGS/ping-laptop.txt" | tr '\n' '|')"
fi
# The fast path: pathman's flowtable on the bridge and the uplink, and the laptop's TCP
# flow offloaded to it (the conntrack entry says [OFFLOAD]) while it runs through the NAT.
STEP=offload
nft list table inet pathman >"$VM_LOGS/nft-tether.txt" 2>&1
devs=$(sed -n 's/.*devices = { \(.*\) }.*/\1/p' "$VM_LOGS/nft-tether.txt")
result flowtable_devices "$devs"
case " ${devs//,/ } " in *" tether "*" up0 "*|*" up0 "*" tether "*) ;;
    *) fail offload "flowtable devices '$devs': $(tr '\n' ' ' <"$VM_LOGS/nft-tether.txt")" ;; esac
in_ns isp iperf3 -s -1 -p 5201 >"$VM_LOGS/iperf-isp.txt" 2>&1 &
IPERF_S=$!
listening() { in_ns isp ss -ltnH "sport = :5201" | grep 5201 >/dev/null; }
wait_for 20 listening || fail offload "the isp's iperf3 server does not listen"
in_ns laptop iperf3 -c 192.168.77.1 -p 5201 -t 8 >"$VM_LOGS/iperf-laptop.txt" 2>&1 &
IPERF_C=$!
offloaded() { grep -E "dport=5201 .*\[OFFLOAD\]" /proc/net/nf_conntrack >/dev/null; }
if wait_for 20 offloaded; then
    result offloaded "$(grep -E 'dport=5201 .*\[OFFLOAD\]' /proc/net/nf_conntrack | sed -n 1p | tr -s ' ')"
else
    fail offload "no [OFFLOAD] entry: $(grep 5201 /proc/net/nf_conntrack | tr '\n' '|')"
fi
wait "$IPERF_C" || fail offload "iperf3 through the NAT: $(tail -3 "$VM_LOGS/iperf-laptop.txt" | tr '\n' '|')"
wait "$IPERF_S" 2>/dev/null
result nat_iperf "$(grep -E 'sender|receiver' "$VM_LOGS/iperf-laptop.txt" | tail -1 | tr -s ' ')"

HOST_MAC=$(in_ns laptop cat "/sys/class/net/$HOSTIF/address" | tr 'a-f' 'A-F')
listed() { ctl tethering_clients | grep "$HOST_MAC" >/dev/null; }
wait_for 20 listed || fail clients "$(ctl tethering_clients | tr '\n' '|') lacks $HOST_MAC"
result client_listed "$HOST_MAC"

STEP=tether_off
out=$(ctl tether gadget off); result tether_off "$(echo "$out" | tr "\n" "|")"
echo "$out" | grep "Disabled tethering for gadget" >/dev/null || fail tether_off "$out"
wait_for 30 unbridged || fail unbridged "$GADGET master '$(master "$GADGET")'"
wait_for 30 gadget_service || fail uplink_again "$(ctl services | tr '\n' '|')"
result uplink_again yes
result result pass
PASSED=1
vlog "tether-gadget: passed"
