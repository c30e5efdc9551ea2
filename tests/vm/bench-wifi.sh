#!/bin/bash
# tests/vm/bench-wifi.sh - guest script of the WiFi benchmark (tests/bench/wifi.sh boots it with
# tests/vm/vm.sh run OUT bench-wifi.sh PATHMAN [ROUNDS] [DEBUG] [NOACD] [ALT-PATHMAN]).
# One guest boot, the same radios, APs and wpa_supplicant for both daemons:
#   wlan0  the station (the daemon's radio)
#   wlan1  20 open BSSes "pm-scan-00".."pm-scan-19" on one hostapd (bss= sections), channel 11,
#          netns apscan
#   wlan2  WPA2-PSK "pm-roam" ("correct horse"), BSSID 02:00:00:00:0a:00, channel 1  } netns aproam,
#   wlan3  the same network,                     BSSID 02:00:00:00:0b:00, channel 6  } bridged (br0)
#          with one dnsmasq (192.168.60.0/24) and a TCP echo server on 192.168.60.1:5000
#   eth1, eth2  veth pairs, dnsmasq on the far sides (netns wired): two wired uplinks
# Phases, each with its own state (pathman: a fresh --state-dir; ConnMan: /var/lib/connman in the
# guest overlay) pre-seeded with WiFi enabled and pm-roam's saved passphrase (Favorite=true,
# AutoConnect=false), and a freshly started wpa_supplicant:
#   pathman  scan (monitor started before the daemon), connect rounds, roam, VmHWM
#   connman  the same with Debian's connmand 1.41
#   pathman-alt (ALT-PATHMAN given): all of pathman's steps again with that binary (e.g. a build
#          with a candidate fix), results pa_*
#   pathman-noacd (NOACD=1, default): connect rounds again with AddressConflictDetection=false
#          (with ALT-PATHMAN when given, else PATHMAN; pn_binary says which)
# Results: key=value in $VM_OUT/result.txt (pm_*, cm_*, pa_*, pn_*); logs in $VM_OUT/logs.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/guest-lib.sh"
PATHMAN=${1:?usage: bench-wifi.sh PATHMAN [ROUNDS] [DEBUG] [NOACD] [ALT-PATHMAN]}
ROUNDS=${2:-5}
DEBUG=${3:-0}
NOACD=${4:-1}
ALT=${5:-}
TOOL=$(cd "$VM_LIB_DIR/../bench/tools" && pwd)/wifi_bench.py
PY=/usr/bin/python3
: >"$VM_OUT/result.txt"
result boot_seconds "$(cut -d' ' -f1 /proc/uptime)"
result rounds "$ROUNDS"
result debug "$DEBUG"
trap 'result finished "$(cut -d" " -f1 /proc/uptime)"' EXIT

# ------------------------------------------------------------------ the air and the wires
wifi_radios 4
ap_netns apscan wlan1
ap_netns aproam wlan2
ap_netns aproam wlan3
ip -n aproam link add br0 type bridge || vdie "no bridge in aproam"
ip -n aproam link set br0 up
extra=""
for ((i = 1; i < 20; i++)); do
    extra+=$(printf 'bss=wlan1-%d\nssid=pm-scan-%02d\nbssid=02:00:00:00:20:%02x\n' "$i" "$i" "$i")$'\n'
done
pids=()
CHANNEL=11 HOSTAPD_EXTRA=$extra start_hostapd apscan wlan1 open pm-scan-00 "" 02:00:00:00:20:00 & pids+=($!)
CHANNEL=1 HOSTAPD_EXTRA="bridge=br0" start_hostapd aproam wlan2 psk pm-roam "correct horse" 02:00:00:00:0a:00 & pids+=($!)
CHANNEL=6 HOSTAPD_EXTRA="bridge=br0" start_hostapd aproam wlan3 psk pm-roam "correct horse" 02:00:00:00:0b:00 & pids+=($!)
ip netns add wired
for k in 1 2; do
    ip link add "eth$k" type veth peer name "weth$k" netns wired || vdie "veth eth$k"
    # veth hands on partial UDP checksums; ConnMan's DHCP client (a packet socket) drops
    # such offers (seen: DISCOVER answered, never REQUESTed, IPv4LL after), so checksum them
    if command -v ethtool >/dev/null; then
        in_ns wired ethtool -K "weth$k" tx off >/dev/null 2>&1 || vlog "ethtool -K weth$k tx off failed"
    else
        result wired_note "no ethtool: veth TX checksum offload left on (ConnMan's wired DHCP may fail)"
    fi
    start_dnsmasq_behind wired "weth$k" "192.168.7$k.0/24"
done
start_private_bus
start_wpa_supplicant
for p in "${pids[@]}"; do wait "$p" || vdie "an access point did not start"; done
result aps "20 x pm-scan-NN (open, wlan1), 2 x pm-roam (WPA2-PSK, wlan2 ch1 + wlan3 ch6, bridged)"
start_dnsmasq_behind aproam br0 192.168.60.0/24
in_ns aproam "$PY" "$TOOL" echo-server 192.168.60.1 5000 >"$VM_LOGS/echo.txt" 2>&1 &
wait_for 30 grep -q listening "$VM_LOGS/echo.txt" || vdie "echo server did not start"

WMAC=$(tr -d ':' </sys/class/net/wlan0/address)
SSID_HEX=$(printf 'pm-roam' | od -An -tx1 | tr -d ' \n')
SID=wifi_${WMAC}_${SSID_HEX}_managed_psk
result service_id "$SID"
seed_state() {   # seed_state DIR - WiFi on, pm-roam's passphrase saved, no auto-connect
    local d=$1
    rm -rf "$d"
    mkdir -p "$d/$SID"
    printf '[global]\nOfflineMode=false\n\n[WiFi]\nEnable=true\n\n[Wired]\nEnable=true\n' >"$d/settings"
    printf '[%s]\nName=pm-roam\nSSID=%s\nFavorite=true\nAutoConnect=false\nPassphrase=correct horse\nIPv4.method=dhcp\nIPv6.method=off\n' \
        "$SID" "$SSID_HEX" >"$d/$SID/settings"
}

reset_links() {   # what one daemon left must not help or hinder the next
    local i
    for i in wlan0 eth1 eth2; do ip -4 addr flush dev "$i"; ip link set "$i" down; done
    if [ -s "$VM_RUN/wpa_supplicant.pid" ]; then
        kill "$(cat "$VM_RUN/wpa_supplicant.pid")" 2>/dev/null
        wait_for 20 bash -c '! dbus-send --bus="unix:path='"$VM_BUS_SOCKET"'" --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:fi.w1.wpa_supplicant1 | grep true >/dev/null'
    fi
    start_wpa_supplicant
}

hwm() { awk '$1=="VmHWM:"{print $2}' "/proc/$1/status"; }
rss() { awk '$1=="VmRSS:"{print $2}' "/proc/$1/status"; }
gone() { ! kill -0 "$1" 2>/dev/null; }

# phase WHO TAG FULL [BIN] - WHO pathman|connman|pathman-alt|pathman-noacd;
# FULL=1: scan, connect, roam, VmHWM
phase() {
    local who=$1 tag=$2 full=$3 bin=${4:-$PATHMAN} pid mon dbg=()
    vlog "phase $who"
    reset_links
    if [ "$full" = 1 ]; then
        "$PY" "$TOOL" scan --tag "${tag}_scan" --prefix pm-scan- --count 20 --timeout 90 \
            >"$VM_LOGS/$who-scan.txt" 2>"$VM_LOGS/$who-scan.err" &
        mon=$!
        wait_for 30 grep -q listening "$VM_LOGS/$who-scan.txt" || vlog "scan monitor not listening"
    fi
    # DHCP on the first wired uplink, on its far side (diagnostics: tcpdump -r)
    ip netns exec wired tcpdump -n -i weth1 -w "$VM_LOGS/weth1-$who.pcap" udp port 67 or udp port 68 >/dev/null 2>&1 &
    local tcpd=$!
    # the kernel's link messages the daemon sees (wlan0 and the wired ones)
    ip -o monitor link >"$VM_LOGS/linkmon-$who.txt" 2>&1 &
    local lmon=$!
    case "$who" in
        pathman*)
            [ "$DEBUG" = 1 ] && dbg=(-d)
            local conf=()
            if [ "$who" = pathman-noacd ]; then
                printf '[General]\nAddressConflictDetection=false\n' >"$VM_RUN/noacd.conf"
                conf=(-c "$VM_RUN/noacd.conf")
            fi
            seed_state "$VM_RUN/pathman-state"
            rm -rf "$VM_RUN/pathman-run"
            : >"$VM_LOGS/pathman.log"
            result "${tag}_binary" "$bin"
            start_pathman "$bin" "${conf[@]+"${conf[@]}"}" -i wlan0,eth1,eth2 "${dbg[@]+"${dbg[@]}"}"
            pid=$PATHMAN_PID ;;
        connman)
            [ "$DEBUG" = 1 ] && dbg=(-d)
            seed_state /var/lib/connman
            printf '[General]\n' >"$VM_RUN/connman-main.conf"
            connmand -n -r -c "$VM_RUN/connman-main.conf" -i wlan0,eth1,eth2 "${dbg[@]+"${dbg[@]}"}" \
                </dev/null >"$VM_LOGS/connman.log" 2>&1 &
            pid=$!
            wait_for 30 has_name net.connman || vlog "connmand did not take net.connman: $(tail -5 "$VM_LOGS/connman.log")" ;;
    esac
    result "${tag}_pid_ok" "$(kill -0 "$pid" 2>/dev/null && echo yes || echo no)"
    peak() { kill -0 "$pid" 2>/dev/null && result "${tag}_vmhwm_after_$1_kb" "$(hwm "$pid")"; }
    if [ "$full" = 1 ]; then
        wait "$mon"
        peak scan
        sed 's/^/  /' "$VM_LOGS/$who-scan.err" >&2
        grep '=' "$VM_LOGS/$who-scan.txt" >>"$VM_OUT/result.txt"
    fi
    # the wired uplinks settle first: their DHCP must not run during the connect rounds or roams
    "$PY" "$TOOL" services --tag "${tag}_svc0" --ethernet 2 --timeout 60 \
        >"$VM_LOGS/$who-services0.txt" 2>"$VM_LOGS/$who-services0.err"
    grep '=' "$VM_LOGS/$who-services0.txt" >>"$VM_OUT/result.txt"
    "$PY" "$TOOL" connect --tag "${tag}_conn" --name pm-roam --rounds "$ROUNDS" \
        >"$VM_LOGS/$who-connect.txt" 2>"$VM_LOGS/$who-connect.err"
    grep '=' "$VM_LOGS/$who-connect.txt" >>"$VM_OUT/result.txt"
    peak connect
    if [ "$full" = 1 ] && grep -q "_rounds_ok=0/" "$VM_LOGS/$who-connect.txt"; then
        result "${tag}_roam_error" "skipped: no connect round reached ready"
    elif [ "$full" = 1 ]; then
        "$PY" "$TOOL" roam --tag "${tag}_roam" --name pm-roam --ifname wlan0 \
            --server 192.168.60.1:5000 --bssids 02:00:00:00:0a:00,02:00:00:00:0b:00 \
            >"$VM_LOGS/$who-roam.txt" 2>"$VM_LOGS/$who-roam.err"
        grep '=' "$VM_LOGS/$who-roam.txt" >>"$VM_OUT/result.txt"
        peak roam
        "$PY" "$TOOL" services --tag "${tag}_svc" --ethernet 2 --timeout 60 \
            >"$VM_LOGS/$who-services.txt" 2>"$VM_LOGS/$who-services.err"
        grep '=' "$VM_LOGS/$who-services.txt" >>"$VM_OUT/result.txt"
        if kill -0 "$pid" 2>/dev/null; then
            result "${tag}_vmhwm_kb" "$(hwm "$pid")"
            result "${tag}_vmrss_kb" "$(rss "$pid")"
        else
            result "${tag}_vmhwm_kb" "n/a (exited)"
        fi
    fi
    kill -TERM "$pid" 2>/dev/null
    wait_for 30 gone "$pid" || { vlog "$who did not exit on TERM"; kill -KILL "$pid"; }
    wait "$pid" 2>/dev/null
    result "${tag}_exit" "$?"
    case "$who" in pathman*) cp "$VM_LOGS/pathman.log" "$VM_LOGS/daemon-$who.log" ;; esac
    kill "$tcpd" "$lmon" 2>/dev/null
}

phase pathman pm 1
phase connman cm 1
[ -n "$ALT" ] && phase pathman-alt pa 1 "$ALT"
[ "$NOACD" = 1 ] && phase pathman-noacd pn 0 "${ALT:-$PATHMAN}"
vlog "bench-wifi: done"
exit 0
