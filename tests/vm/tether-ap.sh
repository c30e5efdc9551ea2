#!/bin/bash
# tests/vm/tether-ap.sh - WiFi tethering on real radios (guest script: vm.sh run OUT tether-ap.sh
# PATHMAN). Two hwsim radios: wlan0 is pathman's; wlan1 is a client's, in netns "sta" with its
# own wpa_supplicant (control socket, no bus) and busybox udhcpc. pathman's uplink is a veth
# (up0) to netns "isp", where dnsmasq serves 192.168.77.0/24 and 192.168.77.1 stands for the
# internet (it has no route back to the tether block: a reply reaches the client only through
# pathman's NAT).
# Debian's connmanctl drives pathman: enable wifi, `tether wifi on pm-ap "correct horse"`; then
# the kernel is checked (bridge "tether" with the block's .1, wlan0 an AP and a port of it), the
# client associates with WPA2-PSK, gets a lease from pathman's DHCP server, pings the "internet",
# is listed by `tethering_clients`; `tether wifi off` stops the AP (the client loses it), wlan0
# leaves the bridge, the bridge goes, wlan0 is a station again that scans; the passphrase is in
# no log line. Writes key=value lines to $VM_OUT/result.txt (result=pass last); exit 0 only when
# all passed.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/guest-lib.sh"
PATHMAN=${1:?usage: tether-ap.sh PATHMAN}
: >"$VM_OUT/result.txt"
STEP=setup PASSED=0
fail() { STEP=$1; vlog "tether-ap: FAILED at $1${2:+: $2}"; [ -n "${2:-}" ] && result why "$2"; exit 1; }
finish() {
    [ $PASSED = 1 ] || { result failed_step "$STEP"; result result fail; }
    [ -n "${PATHMAN_PID:-}" ] && kill "$PATHMAN_PID" 2>/dev/null
}
trap finish EXIT
T0=$(cut -d' ' -f1 /proc/uptime)

STEP=radios; wifi_radios 2
ap_netns sta wlan1
STEP=uplink
isp_uplink up0 isp 192.168.77.0/24 || fail uplink
STEP=bus; start_private_bus || fail bus
STEP=wpa_supplicant; start_wpa_supplicant -d || fail wpa_supplicant
STEP=pathman; start_pathman "$PATHMAN" -i wlan0,up0 -d || fail pathman

ctl() { timeout 60 connmanctl "$@" 2>&1; }
addr4() { ip -4 -o addr show dev "$1" 2>/dev/null | awk '{print $4}' | sed -n 1p; }
has_addr() { addr4 "$1" | grep "^$2" >/dev/null; }
iftype() { iw dev "$1" info 2>/dev/null | awk '$1 == "type" {print $2}'; }
is_type() { [ "$(iftype "$1")" = "$2" ]; }
master() { ip -o link show dev "$1" 2>/dev/null | sed -n 's/.* master \([^ ]*\) .*/\1/p'; }
bridged() { [ "$(master wlan0)" = tether ]; }
unbridged() { [ -z "$(master wlan0)" ]; }
no_bridge() { ! ip link show dev tether >/dev/null 2>&1; }
WPAS_STA=$VM_RUN/wpas-sta
sta_state() { in_ns sta wpa_cli -p "$WPAS_STA" -i wlan1 status 2>/dev/null | sed -n 's/^wpa_state=//p'; }
sta_lost() { [ "$(sta_state)" != COMPLETED ]; }

STEP=enable
out=$(ctl enable wifi); result enable "$(echo "$out" | tr "\n" "|")"
echo "$out" | grep -i -E "Enabled wifi|already enabled" >/dev/null || fail enable "$out"
STEP=uplink_ready
wait_for 60 has_addr up0 192.168.77. || fail uplink_ready "up0: $(addr4 up0)"
result uplink_address "$(addr4 up0)"

STEP=tether_on
T1=$(cut -d' ' -f1 /proc/uptime)
out=$(ctl tether wifi on pm-ap "correct horse"); result tether_on "$(echo "$out" | tr "\n" "|")"
echo "$out" | grep "Enabled tethering for wifi" >/dev/null || fail tether_on "$out"
STEP=ap_up
wait_for 60 is_type wlan0 AP || fail ap_up "wlan0 type $(iftype wlan0)"
wait_for 30 bridged || fail ap_bridged "wlan0 master '$(master wlan0)'"
T2=$(cut -d' ' -f1 /proc/uptime)
result ap_seconds "$(awk -v a="$T1" -v b="$T2" 'BEGIN { printf "%.2f", b - a }')"
wait_for 30 has_addr tether 192.168. || fail bridge_address "tether: $(addr4 tether)"
BR=$(addr4 tether); result bridge_address "$BR"
result ap_freq "$(iw dev wlan0 info | awk '$1 == "channel" {print $3}' | tr -d '(')"

STEP=client_assoc
cat >"$VM_LOGS/wpas-sta.conf" <<CONF
ctrl_interface=$WPAS_STA
network={
    ssid="pm-ap"
    key_mgmt=WPA-PSK
    proto=RSN
    psk="correct horse"
}
CONF
in_ns sta wpa_supplicant -B -Dnl80211 -i wlan1 -c "$VM_LOGS/wpas-sta.conf" -t \
    -f "$VM_LOGS/wpas-sta.log" -P "$VM_RUN/wpas-sta.pid" || fail client_assoc "wpa_supplicant in sta"
# The status that showed COMPLETED is the one recorded: under TCG the AP may time out a
# slow 4-way handshake right after (reason 15) and the client associate again, so a second
# `wpa_cli status` can catch it mid-handshake. The lease and ping steps wait for it.
sta_status_completed() {
    STA_STATUS=$(in_ns sta wpa_cli -p "$WPAS_STA" -i wlan1 status 2>/dev/null)
    grep -x 'wpa_state=COMPLETED' >/dev/null <<<"$STA_STATUS"
}
wait_for 60 sta_status_completed || fail client_assoc "state $(sta_state): $(tail -3 "$VM_LOGS/wpas-sta.log" | tr '\n' '|')"
result client_state "$(echo "$STA_STATUS" | sed -n 's/^wpa_state=//p')"
result client_key_mgmt "$(echo "$STA_STATUS" | sed -n 's/^key_mgmt=//p')"

STEP=client_lease
in_ns sta bash -c ". '$VM_LIB_DIR/guest-lib.sh'; dhcp_lease wlan1 30" || fail client_lease
LEASE_IP=$(sed -n 's/^ip=//p' "$VM_LOGS/lease-wlan1.txt")
LEASE_ROUTER=$(sed -n 's/^router=//p' "$VM_LOGS/lease-wlan1.txt" | cut -d' ' -f1)
result lease_ip "$LEASE_IP"; result lease_router "$LEASE_ROUTER"
result lease_dns "$(sed -n 's/^dns=//p' "$VM_LOGS/lease-wlan1.txt")"

STEP=client_internet
in_ns sta ip route replace default via "$LEASE_ROUTER" dev wlan1 || fail client_internet "no default route"
if in_ns sta busybox ping -c 3 -i 0.2 -w 20 192.168.77.1 >"$VM_LOGS/ping-sta.txt" 2>&1; then
    result client_ping ok
else
    result client_ping fail; fail client_internet "$(tail -2 "$VM_LOGS/ping-sta.txt" | tr '\n' '|')"
fi
nft list table inet pathman >"$VM_LOGS/nft.txt" 2>&1 || nft list ruleset >"$VM_LOGS/nft.txt" 2>&1
result masquerade "$(grep -c masquerade "$VM_LOGS/nft.txt")"

STEP=clients
STA_MAC=$(in_ns sta cat /sys/class/net/wlan1/address | tr 'a-f' 'A-F')
listed() { ctl tethering_clients | grep "$STA_MAC" >/dev/null; }
wait_for 20 listed || fail clients "$(ctl tethering_clients | tr '\n' '|') lacks $STA_MAC"
result client_listed "$STA_MAC"

STEP=tether_off
out=$(ctl tether wifi off); result tether_off "$(echo "$out" | tr "\n" "|")"
echo "$out" | grep "Disabled tethering for wifi" >/dev/null || fail tether_off "$out"
wait_for 30 unbridged || fail ap_unbridged "wlan0 master '$(master wlan0)'"
wait_for 30 no_bridge || fail bridge_gone
wait_for 60 is_type wlan0 managed || fail station_again "wlan0 type $(iftype wlan0)"
wait_for 60 sta_lost || fail client_lost "client still $(sta_state)"
result after_off "wlan0 $(iftype wlan0), client $(sta_state)"
STEP=scans_again
scanned() { ctl scan wifi | grep "Scan completed for wifi" >/dev/null; }
wait_for 60 scanned || fail scans_again

STEP=log
if grep -q "correct horse" "$VM_LOGS/pathman.log"; then fail log "the passphrase is in pathman's log"; fi
result log_clean yes
result total_seconds "$(awk -v a="$T0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }')"
result result pass
PASSED=1
vlog "tether-ap: passed"
