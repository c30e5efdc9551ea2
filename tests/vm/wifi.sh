#!/bin/bash
# tests/vm/wifi.sh - pathman's WiFi on real radios (guest script: vm.sh run OUT wifi.sh PATHMAN).
# Four hwsim radios: wlan0 is pathman's station; three access points, each in its own netns
# with dnsmasq behind it: wlan1 WPA2-PSK "pm-psk" (192.168.52.0/24), wlan2 WPA3-SAE "pm-sae"
# (192.168.53.0/24), wlan3 open "pm-open" (192.168.54.0/24), wlan4 hidden WPA2-PSK "pm-hidden"
# (192.168.55.0/24). The real wpa_supplicant -u on a
# private bus, pathman managing wlan0, and Debian's connmanctl as the user's client:
# enable wifi, scan wifi, services, agent on + connect with the passphrase typed at the prompt,
# then the kernel is checked (address from the AP's dnsmasq, default route by wlan0), the
# passphrase saved and never logged; disconnect; a wrong SAE password (invalid-key) and the
# right one; the open network; the hidden network, named at connmanctl's "Hidden SSID name?"
# prompt; a restart reconnects a favourite by itself.
# Writes key=value lines to $VM_OUT/result.txt (result=pass last); exit 0 only when all passed.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/guest-lib.sh"
PATHMAN=${1:?usage: wifi.sh PATHMAN}
REPO=$(cd "$VM_LIB_DIR/../.." && pwd)
SESSION=$VM_LIB_DIR/connmanctl_session.py
AGENT=$REPO/tests/clients/agent_connect.py
: >"$VM_OUT/result.txt"
STEP=setup PASSED=0
fail() { STEP=$1; vlog "wifi: FAILED at $1${2:+: $2}"; [ -n "${2:-}" ] && result why "$2"; exit 1; }
finish() {
    [ $PASSED = 1 ] || { result failed_step "$STEP"; result result fail; }
    [ -n "${PATHMAN_PID:-}" ] && kill "$PATHMAN_PID" 2>/dev/null
}
trap finish EXIT

STEP=radios; wifi_radios 5
for k in psk:1 sae:2 open:3 hidden:4; do ap_netns "ap-${k%%:*}" "wlan${k##*:}"; done
pids=()
CHANNEL=1  start_hostapd ap-psk  wlan1 psk  pm-psk  "correct horse" 02:00:00:00:11:00 & pids+=($!)
CHANNEL=6  start_hostapd ap-sae  wlan2 sae  pm-sae  "correct horse" 02:00:00:00:12:00 & pids+=($!)
CHANNEL=11 start_hostapd ap-open wlan3 open pm-open ""              02:00:00:00:13:00 & pids+=($!)
CHANNEL=6  start_hostapd ap-hidden wlan4 hidden-psk pm-hidden "correct horse" 02:00:00:00:14:00 & pids+=($!)
STEP=bus; start_private_bus || fail bus
STEP=wpa_supplicant; start_wpa_supplicant -d || fail wpa_supplicant
for p in "${pids[@]}"; do wait "$p" || fail hostapd; done
start_dnsmasq_behind ap-psk wlan1 192.168.52.0/24 || fail dnsmasq
start_dnsmasq_behind ap-sae wlan2 192.168.53.0/24 || fail dnsmasq
start_dnsmasq_behind ap-open wlan3 192.168.54.0/24 || fail dnsmasq
start_dnsmasq_behind ap-hidden wlan4 192.168.55.0/24 || fail dnsmasq

MAC=$(tr -d ':' </sys/class/net/wlan0/address)
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
PSK_ID=wifi_${MAC}_$(hex pm-psk)_managed_psk
SAE_ID=wifi_${MAC}_$(hex pm-sae)_managed_psk
OPEN_ID=wifi_${MAC}_$(hex pm-open)_managed_none
HIDDEN_ID=wifi_${MAC}_hidden_managed_psk
NAMED_ID=wifi_${MAC}_$(hex pm-hidden)_managed_psk
result psk_id "$PSK_ID"

# The real supplicant's signal and state order on a real radio, for tests/vm_wifi.rs to
# compare with the lab's fake (tests/lab/fake_wpa_supplicant.py) so the two don't drift.
STEP=trace
TRACE=$REPO/tests/lab/wpa_trace.py
drop_iface() {
    local p
    p=$(busctl --system call fi.w1.wpa_supplicant1 /fi/w1/wpa_supplicant1 fi.w1.wpa_supplicant1 GetInterface s wlan0 2>/dev/null | awk '{print $2}' | tr -d '"')
    [ -z "$p" ] || busctl --system call fi.w1.wpa_supplicant1 /fi/w1/wpa_supplicant1 fi.w1.wpa_supplicant1 RemoveInterface o "$p"
}
/usr/bin/python3 "$TRACE" run connect-psk --ifname wlan0 --ssid pm-psk --psk "correct horse" >"$VM_OUT/trace-psk.txt" 2>&1 \
    || fail trace "$(tail -3 "$VM_OUT/trace-psk.txt" | tr '\n' '|')"
drop_iface
/usr/bin/python3 "$TRACE" run connect-psk --ifname wlan0 --ssid pm-psk --psk "wrong horse" >"$VM_OUT/trace-wrong.txt" 2>&1 \
    || fail trace_wrong "$(tail -3 "$VM_OUT/trace-wrong.txt" | tr '\n' '|')"
drop_iface
result traces yes

STEP=pathman; start_pathman "$PATHMAN" -i wlan0 || fail pathman
ctl() { timeout 60 connmanctl "$@" 2>&1; }
addr4() { ip -4 -o addr show dev wlan0 | awk '{print $4}' | sed -n 1p; }
has_addr() { addr4 | grep "^$1" >/dev/null; }
no_addr() { ! addr4 | grep . >/dev/null; }
svc_state() { dbus-send --system --print-reply --dest=net.connman "/net/connman/service/$1" net.connman.Service.GetProperties 2>/dev/null | grep -A1 'string "State"' | tail -1 | sed -n 's/.*string "\(.*\)"/\1/p'; }
is_state() { [ "$(svc_state "$1")" = "$2" ]; }
ready() { local s; s=$(svc_state "$1"); [ "$s" = ready ] || [ "$s" = online ]; }

STEP=enable
out=$(ctl enable wifi); result enable "$out"
echo "$out" | grep "Enabled wifi" >/dev/null || fail enable "$out"
STEP=scan
t=$(cut -d' ' -f1 /proc/uptime)
out=$(ctl scan wifi); result scan "$out"
echo "$out" | grep "Scan completed for wifi" >/dev/null || fail scan "$out"
result scan_seconds "$(awk -v a="$t" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }')"
STEP=services
seen_all() { local l; l=$(ctl services); for i in "$PSK_ID" "$SAE_ID" "$OPEN_ID"; do echo "$l" | grep "$i" >/dev/null || return 1; done; }
wait_for 60 seen_all || fail services "$(ctl services | tr '\n' '|')"
ctl services >"$VM_LOGS/services.txt"
result services "$(tr '\n' '|' <"$VM_LOGS/services.txt")"

STEP=connect_psk
/usr/bin/python3 "$SESSION" 90 'agent on=>Agent registered' "connect $PSK_ID=>Passphrase?" \
    "correct horse=>Connected $PSK_ID" >"$VM_LOGS/connmanctl-psk.txt" 2>&1 \
    || fail connect_psk "$(tail -5 "$VM_LOGS/connmanctl-psk.txt" | tr '\n' '|')"
result connect_psk "$(grep '^step' "$VM_LOGS/connmanctl-psk.txt" | tr '\n' '|')"
wait_for 30 has_addr 192.168.52. || fail psk_address "$(addr4)"
result psk_address "$(addr4)"
ip -4 route show default >"$VM_LOGS/routes.txt"
result psk_default "$(tr '\n' '|' <"$VM_LOGS/routes.txt")"
grep -q "dev wlan0" "$VM_LOGS/routes.txt" || fail psk_default "$(cat "$VM_LOGS/routes.txt")"
ready "$PSK_ID" || fail psk_state "$(svc_state "$PSK_ID")"
grep -q '^Passphrase=correct horse$' "$VM_RUN/pathman-state/$PSK_ID/settings" || fail psk_saved
result psk_saved yes

STEP=disconnect
out=$(ctl disconnect "$PSK_ID"); result disconnect "$out"
wait_for 20 no_addr || fail disconnect_address "$(addr4)"

STEP=sae_wrong
/usr/bin/python3 "$AGENT" "$SAE_ID" passphrase "wrong horse" >"$VM_LOGS/agent-sae-wrong.txt" 2>&1
result sae_wrong "$(tr '\n' '|' <"$VM_LOGS/agent-sae-wrong.txt")"
grep -q "invalid-key" "$VM_LOGS/agent-sae-wrong.txt" || fail sae_wrong "$(cat "$VM_LOGS/agent-sae-wrong.txt")"
is_state "$SAE_ID" failure || fail sae_wrong_state "$(svc_state "$SAE_ID")"
[ ! -e "$VM_RUN/pathman-state/$SAE_ID/settings" ] || ! grep -q '^Passphrase=' "$VM_RUN/pathman-state/$SAE_ID/settings" \
    || fail sae_wrong_stored
STEP=sae_right
/usr/bin/python3 "$SESSION" 90 'agent on=>Agent registered' "connect $SAE_ID=>Passphrase?" \
    "correct horse=>Connected $SAE_ID" >"$VM_LOGS/connmanctl-sae.txt" 2>&1 \
    || fail sae_right "$(tail -5 "$VM_LOGS/connmanctl-sae.txt" | tr '\n' '|')"
wait_for 30 has_addr 192.168.53. || fail sae_address "$(addr4)"
result sae_address "$(addr4)"

STEP=open
out=$(ctl connect "$OPEN_ID"); result connect_open "$out"
echo "$out" | grep "Connected $OPEN_ID" >/dev/null || fail open "$out"
wait_for 30 has_addr 192.168.54. || fail open_address "$(addr4)"
result open_address "$(addr4)"
ready "$SAE_ID" && fail one_per_radio "SAE still ready beside open"

# The hidden AP answers no wildcard probe: its service shows once a scan caught one of its
# beacons (empty SSID), so scan until it is listed.
STEP=hidden_seen
hidden_listed() { ctl scan wifi >/dev/null; ctl services | grep "$HIDDEN_ID" >/dev/null; }
wait_for 120 hidden_listed || fail hidden_seen "$(ctl services | tr '\n' '|')"
result hidden_seen yes
STEP=hidden
/usr/bin/python3 "$SESSION" 90 'agent on=>Agent registered' "connect $HIDDEN_ID=>Hidden SSID name?" \
    "pm-hidden=>Passphrase?" "correct horse=>Connected $HIDDEN_ID" >"$VM_LOGS/connmanctl-hidden.txt" 2>&1 \
    || fail hidden "$(tail -5 "$VM_LOGS/connmanctl-hidden.txt" | tr '\n' '|')"
result connect_hidden "$(grep '^step' "$VM_LOGS/connmanctl-hidden.txt" | tr '\n' '|')"
wait_for 30 has_addr 192.168.55. || fail hidden_address "$(addr4)"
result hidden_address "$(addr4)"
ready "$NAMED_ID" || fail hidden_state "$(svc_state "$NAMED_ID")"
grep -q '^Passphrase=correct horse$' "$VM_RUN/pathman-state/$NAMED_ID/settings" || fail hidden_saved
result hidden_saved yes

STEP=restart
kill "$PATHMAN_PID"; wait "$PATHMAN_PID" 2>/dev/null; PATHMAN_PID=
start_pathman "$PATHMAN" -i wlan0 || fail restart
any_ready() { ready "$PSK_ID" || ready "$SAE_ID" || ready "$OPEN_ID" || ready "$NAMED_ID"; }
wait_for 60 any_ready || fail restart_reconnect "$(ctl services | tr '\n' '|')"
result restart_reconnect yes

STEP=log
if grep -q "correct horse\|wrong horse" "$VM_LOGS/pathman.log"; then fail log "a passphrase is in pathman's log"; fi
result log_clean yes
result result pass
PASSED=1
vlog "wifi: passed"
