# shellcheck shell=bash
# tests/vm/guest-lib.sh - helpers for VM-tier guest scripts (bash, run inside the guest by
# tests/vm/vm.sh run). Source it:   . "$(dirname "$0")/guest-lib.sh"
# Configs and logs go to $VM_OUT/logs (the host sees them), sockets and pid files to /run/vm
# (guest tmpfs). Nothing is cleaned up: the guest powers off when the script ends.
#
#   wifi_radios N                         load mac80211_hwsim with N radios, wait for wlan0..N-1
#   ap_netns NAME PHY|IFACE               move a radio into netns NAME (created if need be)
#   start_hostapd NS IFACE KIND SSID [PASS] [BSSID]
#                                         KIND: open | psk | sae | psk-sae | hidden-psk;
#                                         env CHANNEL (default 1), HOSTAPD_EXTRA (config lines)
#   start_dnsmasq_behind NS IFACE SUBNET [DNSMASQ ARGS...]
#                                         SUBNET a.b.c.0/24: IFACE gets a.b.c.1, leases .10-.200
#   start_private_bus                     dbus-daemon (system-bus type) at $VM_BUS_SOCKET, exports
#                                         DBUS_SYSTEM_BUS_ADDRESS for everything started after it
#   start_wpa_supplicant [ARGS...]        wpa_supplicant -u on that bus, waits for its name
#   start_pathman BIN [DAEMON ARGS...]   BIN daemon on that bus (state/run dirs in /run/vm,
#                                         --no-set-clock, log $VM_LOGS/pathman.log), waits
#                                         for net.connman; sets PATHMAN_PID
#   isp_uplink IFACE NS SUBNET            a veth IFACE (up, here) to isp0 in netns NS, with dnsmasq
#                                         behind it serving SUBNET (a.b.c.0/24): an uplink
#   usb_gadget_ncm NS                     a real USB gadget: dummy_hcd + configfs NCM; sets GADGET
#                                         (the board's usb0, DEVTYPE gadget) and HOSTIF (the host
#                                         stack's cdc_ncm interface, moved into netns NS, up)
#   dhcp_lease IFACE [SECONDS]            busybox udhcpc; sets LEASE_IP/LEASE_ROUTER, writes
#                                         $VM_OUT/logs/lease-IFACE.txt
#   wait_for SECONDS CMD...               poll CMD every 0.1 s until it succeeds
#   in_ns NS CMD...                       ip netns exec NS CMD...
#   result KEY VALUE                      append KEY=VALUE to $VM_OUT/result.txt
#   vlog MSG                              timestamped line on the console

: "${VM_OUT:?guest-lib.sh: VM_OUT unset (run this script through tests/vm/vm.sh run)}"
# shellcheck disable=SC2034  # for the scripts that source this (their helpers live beside it)
VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_LOGS=$VM_OUT/logs
VM_RUN=/run/vm
VM_BUS_SOCKET=${VM_BUS_SOCKET:-/run/dbus/system_bus_socket}
mkdir -p "$VM_LOGS" "$VM_RUN"

vlog() { printf '[%6s] %s\n' "$(cut -d' ' -f1 /proc/uptime)" "$*" >&2; }
vdie() { vlog "FAILED: $*"; exit 1; }
result() { printf '%s=%s\n' "$1" "$2" >>"$VM_OUT/result.txt"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

wait_for() {   # wait_for SECONDS CMD... - 0 once CMD succeeds, 1 (with a message) on timeout
    local secs=$1 end now
    shift
    # $EPOCHREALTIME (bash 5): no date(1) fork per poll, which costs under TCG.
    now=${EPOCHREALTIME//[!0-9]/}
    end=$((now + secs * 1000000))
    while ! "$@" >/dev/null 2>&1; do
        now=${EPOCHREALTIME//[!0-9]/}
        if [ "$now" -ge "$end" ]; then
            vlog "wait_for: timed out after ${secs}s: $*"
            return 1
        fi
        sleep 0.1
    done
}

# ------------------------------------------------------------------ radios
_wlan_count() { local n=0 d; for d in /sys/class/net/*/phy80211; do [ -e "$d" ] && n=$((n + 1)); done; echo "$n"; }
_has_wlans() { [ "$(_wlan_count)" -ge "$1" ]; }

wifi_radios() {   # wifi_radios N
    local n=$1 i
    [ ! -d /sys/module/mac80211_hwsim ] || vdie "mac80211_hwsim is already loaded"
    modprobe mac80211_hwsim radios="$n" || vdie "modprobe mac80211_hwsim radios=$n failed"
    wait_for 20 _has_wlans "$n" || vdie "only $(_wlan_count) of $n hwsim radios appeared"
    for ((i = 0; i < n; i++)); do
        [ -e "/sys/class/net/wlan$i/phy80211" ] || vdie "wlan$i missing: $(ls /sys/class/net)"
    done
    vlog "wifi_radios: $n radios: $(for ((i = 0; i < n; i++)); do printf 'wlan%s=%s ' "$i" "$(cat /sys/class/net/wlan$i/phy80211/name)"; done)"
}

ap_netns() {   # ap_netns NAME PHY|IFACE
    local ns=$1 phy=$2
    if [ -e "/sys/class/net/$phy/phy80211/name" ]; then phy=$(cat "/sys/class/net/$phy/phy80211/name"); fi
    [ -e "/var/run/netns/$ns" ] || ip netns add "$ns" || vdie "ip netns add $ns"
    ip -n "$ns" link set lo up
    iw phy "$phy" set netns name "$ns" || vdie "iw phy $phy set netns name $ns failed"
}

# ------------------------------------------------------------------ access points
_hostapd_enabled() { in_ns "$1" hostapd_cli -p "$VM_RUN/hostapd-$2" -i "$2" status 2>/dev/null | grep -x 'state=ENABLED' >/dev/null; }

start_hostapd() {   # start_hostapd NS IFACE KIND SSID [PASS] [BSSID]
    local ns=$1 ifc=$2 kind=$3 ssid=$4 pass=${5:-} bssid=${6:-}
    local conf=$VM_LOGS/hostapd-$ifc.conf log=$VM_LOGS/hostapd-$ifc.log
    {
        echo "interface=$ifc"
        echo "driver=nl80211"
        echo "ctrl_interface=$VM_RUN/hostapd-$ifc"
        echo "ssid=$ssid"
        echo "hw_mode=g"
        echo "channel=${CHANNEL:-1}"
        case "$kind" in
            open) ;;
            psk|hidden-psk)
                echo "wpa=2"; echo "wpa_key_mgmt=WPA-PSK"; echo "rsn_pairwise=CCMP"
                echo "wpa_passphrase=$pass"
                if [ "$kind" = hidden-psk ]; then echo "ignore_broadcast_ssid=1"; fi ;;
            sae)
                echo "wpa=2"; echo "wpa_key_mgmt=SAE"; echo "rsn_pairwise=CCMP"
                echo "ieee80211w=2"; echo "sae_password=$pass"; echo "sae_pwe=2" ;;
            psk-sae)
                echo "wpa=2"; echo "wpa_key_mgmt=WPA-PSK SAE"; echo "rsn_pairwise=CCMP"
                echo "ieee80211w=1"; echo "wpa_passphrase=$pass"; echo "sae_password=$pass"; echo "sae_pwe=2" ;;
            *) vdie "start_hostapd: unknown KIND $kind (open|psk|sae|psk-sae|hidden-psk)" ;;
        esac
        if [ -n "${HOSTAPD_EXTRA:-}" ]; then printf '%s\n' "$HOSTAPD_EXTRA"; fi
    } >"$conf"
    case "$kind" in open) ;; *) [ -n "$pass" ] || vdie "start_hostapd $kind $ssid: a passphrase is needed" ;; esac
    if [ -n "$bssid" ]; then
        in_ns "$ns" ip link set "$ifc" down
        in_ns "$ns" ip link set "$ifc" address "$bssid" || vdie "cannot set $ifc address $bssid"
    fi
    in_ns "$ns" hostapd -B -t -P "$VM_RUN/hostapd-$ifc.pid" -f "$log" "$conf" \
        || vdie "hostapd on $ifc ($kind $ssid) did not start: $(tail -5 "$log")"
    wait_for 20 _hostapd_enabled "$ns" "$ifc" || vdie "hostapd on $ifc ($kind $ssid) not ENABLED: $(tail -5 "$log")"
    vlog "start_hostapd: $ssid ($kind) on $ifc in $ns, $(in_ns "$ns" cat "/sys/class/net/$ifc/address")"
}

start_dnsmasq_behind() {   # start_dnsmasq_behind NS IFACE SUBNET [DNSMASQ ARGS...]
    local ns=$1 ifc=$2 subnet=$3 net
    shift 3
    case "$subnet" in
        *.*.*.0/24) net=${subnet%.0/24} ;;
        *.*.*.0) net=${subnet%.0} ;;
        *) vdie "start_dnsmasq_behind: SUBNET must be a.b.c.0/24, not $subnet" ;;
    esac
    in_ns "$ns" ip addr add "$net.1/24" dev "$ifc" || vdie "cannot address $ifc in $ns"
    in_ns "$ns" ip link set "$ifc" up
    in_ns "$ns" dnsmasq --conf-file=/dev/null --user=root --group=root \
        --pid-file="$VM_RUN/dnsmasq-$ifc.pid" --log-facility="$VM_LOGS/dnsmasq-$ifc.log" --log-dhcp \
        --dhcp-leasefile="$VM_RUN/dnsmasq-$ifc.leases" \
        --interface="$ifc" --bind-interfaces --except-interface=lo --no-resolv --no-hosts \
        --dhcp-range="$net.10,$net.200,255.255.255.0,1h" --dhcp-option=option:router,"$net.1" \
        --dhcp-option=option:dns-server,"$net.1" --dhcp-authoritative --no-ping "$@" \
        || vdie "dnsmasq on $ifc in $ns did not start: $(tail -5 "$VM_LOGS/dnsmasq-$ifc.log")"
    vlog "start_dnsmasq_behind: $net.0/24 on $ifc in $ns"
}

# ------------------------------------------------------------------ D-Bus and wpa_supplicant
_bus_up() { dbus-send --bus="unix:path=$VM_BUS_SOCKET" --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId; }

has_name() {   # has_name NAME - the name has an owner on the private bus
    dbus-send --bus="unix:path=$VM_BUS_SOCKET" --print-reply=literal --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep true >/dev/null
}

start_private_bus() {
    local conf=$VM_LOGS/bus.conf
    mkdir -p "$(dirname "$VM_BUS_SOCKET")"
    rm -f "$VM_BUS_SOCKET"
    # A system-type bus (services check for it) at a filesystem socket, which every netns
    # reaches (abstract sockets are per netns). Everyone may own and call anything: the guest
    # is a test bench (fi.w1.wpa_supplicant1, net.connman, pathman's own names, agents).
    cat >"$conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$VM_BUS_SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow eavesdrop="true"/>
  </policy>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
XML
    dbus-daemon --config-file="$conf" --fork --nopidfile --nosyslog --print-pid >"$VM_RUN/dbus.pid" 2>"$VM_LOGS/dbus.log" \
        || vdie "dbus-daemon did not start: $(cat "$VM_LOGS/dbus.log")"
    wait_for 10 _bus_up || vdie "the private bus does not answer at $VM_BUS_SOCKET"
    export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$VM_BUS_SOCKET"
    vlog "start_private_bus: $DBUS_SYSTEM_BUS_ADDRESS"
}

start_wpa_supplicant() {   # start_wpa_supplicant [ARGS...] (e.g. -dd)
    [ -n "${DBUS_SYSTEM_BUS_ADDRESS:-}" ] || vdie "start_wpa_supplicant: start_private_bus first"
    wpa_supplicant -u -t -O "$VM_RUN/wpa_supplicant" -P "$VM_RUN/wpa_supplicant.pid" \
        -f "$VM_LOGS/wpa_supplicant.log" -B "${@:--d}" \
        || vdie "wpa_supplicant -u did not start: $(tail -5 "$VM_LOGS/wpa_supplicant.log")"
    wait_for 20 has_name fi.w1.wpa_supplicant1 || vdie "wpa_supplicant did not take fi.w1.wpa_supplicant1: $(tail -5 "$VM_LOGS/wpa_supplicant.log")"
    vlog "start_wpa_supplicant: fi.w1.wpa_supplicant1 on the bus"
}

start_pathman() {   # start_pathman BIN [DAEMON ARGS...] (e.g. -i wlan0 -d)
    local bin=$1
    shift
    [ -x "$bin" ] || vdie "start_pathman: no pathman binary at $bin (pass the host path of target/release/pathman)"
    [ -n "${DBUS_SYSTEM_BUS_ADDRESS:-}" ] || vdie "start_pathman: start_private_bus first"
    mkdir -p "$VM_RUN/pathman-state" "$VM_RUN/pathman-run"
    RUST_BACKTRACE=1 "$bin" daemon --state-dir "$VM_RUN/pathman-state" --run-dir "$VM_RUN/pathman-run" \
        --no-set-clock "$@" </dev/null >>"$VM_LOGS/pathman.log" 2>&1 &
    PATHMAN_PID=$!
    wait_for 30 has_name net.connman || vdie "pathman did not take net.connman: $(tail -5 "$VM_LOGS/pathman.log")"
    vlog "start_pathman: pid $PATHMAN_PID on the bus ($*)"
}

isp_uplink() {   # isp_uplink IFACE NS SUBNET
    local ifc=$1 ns=$2 subnet=$3
    [ -e "/var/run/netns/$ns" ] || ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up
    ip link add "$ifc" type veth peer name isp0 netns "$ns" || { vlog "isp_uplink: veth $ifc"; return 1; }
    ip link set "$ifc" up
    start_dnsmasq_behind "$ns" isp0 "$subnet"
}

# ------------------------------------------------------------------ USB gadget
_cdc_ncm_if() {
    local d
    for d in /sys/class/net/*; do
        [ "$(basename "$(readlink -f "$d/device/driver" 2>/dev/null)")" = cdc_ncm ] && { basename "$d"; return 0; }
    done
    return 1
}

usb_gadget_ncm() {   # usb_gadget_ncm NS - sets GADGET, HOSTIF
    local ns=$1 m g=/sys/kernel/config/usb_gadget/pm udc
    for m in configfs libcomposite dummy_hcd usb_f_ncm cdc_ncm; do
        modprobe "$m" || { vlog "usb_gadget_ncm: modprobe $m failed"; return 1; }
    done
    mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config || return 1
    mkdir -p "$g" || return 1
    echo 0x1d6b >"$g/idVendor"; echo 0x0104 >"$g/idProduct"
    mkdir -p "$g/strings/0x409" "$g/configs/c.1/strings/0x409" "$g/functions/ncm.usb0"
    echo pathman >"$g/strings/0x409/manufacturer"; echo "pathman tether test" >"$g/strings/0x409/product"
    echo NCM >"$g/configs/c.1/strings/0x409/configuration"
    echo 02:00:00:00:aa:01 >"$g/functions/ncm.usb0/dev_addr"
    echo 02:00:00:00:aa:02 >"$g/functions/ncm.usb0/host_addr"
    ln -s "$g/functions/ncm.usb0" "$g/configs/c.1/" || return 1
    udc=$(ls /sys/class/udc)
    udc=${udc%%$'\n'*}
    [ -n "$udc" ] || { vlog "usb_gadget_ncm: no UDC (dummy_hcd)"; return 1; }
    echo "$udc" >"$g/UDC" || return 1
    GADGET=$(cat "$g/functions/ncm.usb0/ifname")
    wait_for 30 _cdc_ncm_if || { vlog "usb_gadget_ncm: no cdc_ncm interface: $(ls /sys/class/net)"; return 1; }
    HOSTIF=$(_cdc_ncm_if)
    [ -e "/var/run/netns/$ns" ] || ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up
    ip link set "$HOSTIF" netns "$ns" || return 1
    ip -n "$ns" link set "$HOSTIF" up
    vlog "usb_gadget_ncm: $GADGET (gadget) <-> $HOSTIF (cdc_ncm, in $ns)"
}

# ------------------------------------------------------------------ DHCP client
dhcp_lease() {   # dhcp_lease IFACE [SECONDS] - sets LEASE_IP, LEASE_ROUTER
    local ifc=$1 secs=${2:-20} script=$VM_RUN/udhcpc.script
    cat >"$script" <<'SH'
#!/bin/sh
# busybox udhcpc event script: configure the lease and record it
case "$1" in
    deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        { echo "ip=$ip"; echo "mask=${mask:-}"; echo "router=${router:-}"; echo "dns=${dns:-}"; echo "lease=${lease:-}"; echo "serverid=${serverid:-}"; } >"$LEASE_FILE" ;;
esac
exit 0
SH
    chmod 755 "$script"
    local lf=$VM_LOGS/lease-$ifc.txt
    rm -f "$lf"
    LEASE_FILE=$lf timeout "$((secs + 5))" busybox udhcpc -i "$ifc" -f -q -n -t "$secs" -T 1 -A 1 -s "$script" \
        >"$VM_LOGS/udhcpc-$ifc.log" 2>&1 || { vlog "dhcp_lease: no lease on $ifc: $(tail -3 "$VM_LOGS/udhcpc-$ifc.log")"; return 1; }
    [ -s "$lf" ] || { vlog "dhcp_lease: udhcpc succeeded but wrote no lease"; return 1; }
    LEASE_IP=$(sed -n 's/^ip=//p' "$lf")
    LEASE_ROUTER=$(sed -n 's/^router=//p' "$lf" | cut -d' ' -f1)
    vlog "dhcp_lease: $ifc got $LEASE_IP (router $LEASE_ROUTER)"
}
