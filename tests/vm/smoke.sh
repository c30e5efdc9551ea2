#!/bin/bash
# tests/vm/smoke.sh - the VM tier's smoke test (guest script: tests/vm/vm.sh run OUT smoke.sh).
# Five hwsim radios: wlan0 is the station, four access points each in a netns of its own:
#   wlan1 open "pm-open", wlan2 WPA2-PSK "pm-psk" ("correct horse", dnsmasq behind it),
#   wlan3 SAE "pm-sae", wlan4 hidden WPA2-PSK "pm-hidden".
# Then wpa_supplicant -u on a private bus, driven over D-Bus (wpas.py): CreateInterface(wlan0),
# Scan (the 3 visible SSIDs), AddNetwork+SelectNetwork on pm-psk -> completed, a DHCP lease
# (busybox udhcpc), busybox ping of the AP. Writes $VM_OUT/result.txt (key=value; result=pass
# last when every step passed) and logs in $VM_OUT/logs/. Exit 0 only when all passed.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/guest-lib.sh"
WPAS=$VM_LIB_DIR/wpas.py
: >"$VM_OUT/result.txt"
T0=$(cut -d' ' -f1 /proc/uptime)
result boot_seconds "$T0"
STEP=setup PASSED=0
fail() { STEP=$1; exit 1; }
# Any exit before the end (also a guest-lib vdie) records where it stopped.
finish() { if [ $PASSED = 0 ]; then result failed_step "$STEP"; result result fail; vlog "smoke: FAILED at $STEP"; fi; }
trap finish EXIT

STEP=radios; wifi_radios 5
result radios 5
for k in open:1 psk:2 sae:3 hidden:4; do ap_netns "ap-${k%%:*}" "wlan${k##*:}"; done
# The four access points start in parallel (each hostapd takes seconds under TCG).
pids=()
CHANNEL=1  start_hostapd ap-open   wlan1 open       pm-open                   02:00:00:00:01:00 & pids+=($!)
CHANNEL=6  start_hostapd ap-psk    wlan2 psk        pm-psk    "correct horse" 02:00:00:00:02:00 & pids+=($!)
CHANNEL=11 start_hostapd ap-sae    wlan3 sae        pm-sae    "correct horse" 02:00:00:00:03:00 & pids+=($!)
CHANNEL=1  start_hostapd ap-hidden wlan4 hidden-psk pm-hidden "correct horse" 02:00:00:00:04:00 & pids+=($!)
STEP=bus; start_private_bus || fail bus
STEP=wpa_supplicant; start_wpa_supplicant -d || fail wpa_supplicant
aps=(ap_open ap_psk ap_sae ap_hidden)
for i in 0 1 2 3; do wait "${pids[$i]}" || fail "${aps[$i]}"; done
result aps 4
STEP=dnsmasq; start_dnsmasq_behind ap-psk wlan2 192.168.52.0/24 || fail dnsmasq
T1=$(cut -d' ' -f1 /proc/uptime)
result setup_seconds "$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')"

# One python3 process for the D-Bus steps (it starts slowly under TCG).
STEP=wpa_dbus
/usr/bin/python3 "$WPAS" create wlan0 \
    + scan wlan0 --expect pm-open,pm-psk,pm-sae --freqs 2412,2437,2462 --timeout 60 \
    + connect wlan0 --ssid pm-psk --psk "correct horse" --timeout 60 >"$VM_LOGS/wpas.txt"
rc=$?
cat "$VM_LOGS/wpas.txt" >>"$VM_OUT/result.txt"
if [ $rc != 0 ]; then
    grep -q '^connect_' "$VM_LOGS/wpas.txt" && fail connect
    grep -q '^scan_' "$VM_LOGS/wpas.txt" && fail scan
    fail create_interface
fi
STEP=dhcp
if dhcp_lease wlan0 30; then
    result lease ok; result lease_ip "$LEASE_IP"; result lease_router "$LEASE_ROUTER"
else
    result lease none; fail dhcp
fi
STEP=ping
if busybox ping -c 3 -i 0.2 -w 20 "$LEASE_ROUTER" >"$VM_LOGS/ping.txt" 2>&1; then
    result ping ok
else
    result ping fail; fail ping
fi
result ping_summary "$(grep -E 'packets transmitted' "$VM_LOGS/ping.txt")"
T2=$(cut -d' ' -f1 /proc/uptime)
result test_seconds "$(awk -v a="$T1" -v b="$T2" 'BEGIN { printf "%.2f", b - a }')"
result total_seconds "$T2"
result result pass
PASSED=1
vlog "smoke: passed"
