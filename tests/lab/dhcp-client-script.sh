#!/bin/sh
# tests/lab/dhcp-client-script.sh - the script of the lab's real DHCP clients (busybox
# udhcpc, ISC dhclient, dhcpcd) in a LAN client namespace (lab.sh lan ID client ...).
# It configures the address and default route for udhcpc and dhclient (dhcpcd does that
# itself), never touches resolv.conf, and logs one line per event to $PM_LOG:
#     <client> <event> <ip>/<prefix> router <r> dns <d>
# with event one of bound, renew, rebind, reboot, release, expire, nak, deconfig, other.
client=${PM_CLIENT:-unknown}
log=${PM_LOG:-/dev/null}
if [ "$client" = udhcpc ]; then
    event=$1; iface=$interface; addr=$ip; len=$mask; router=${router%% *}; servers=$dns
else
    case "$reason" in
        BOUND) event=bound ;; RENEW) event=renew ;; REBIND) event=rebind ;;
        REBOOT) event=reboot ;; RELEASE) event=release ;; EXPIRE) event=expire ;;
        NAK) event=nak ;; STOP|PREINIT|CARRIER|NOCARRIER) event=$(echo "$reason" | tr A-Z a-z) ;;
        *) event=other-$reason ;;
    esac
    iface=$interface; addr=$new_ip_address; router=${new_routers%% *}
    servers=$new_domain_name_servers
    len=$new_subnet_cidr
    if [ -z "$len" ] && [ -n "$new_subnet_mask" ]; then
        len=0
        for o in $(echo "$new_subnet_mask" | tr . ' '); do
            while [ "$o" -gt 0 ]; do len=$((len + (o & 1))); o=$((o >> 1)); done
        done
    fi
fi
echo "$client $event ${addr:--}/${len:--} router ${router:--} dns $(echo ${servers:--} | tr ' ' ,)" >>"$log"
[ "$client" = dhcpcd ] && exit 0
case "$event" in
    bound|renew|rebind|reboot)
        ip -4 addr flush dev "$iface" 2>/dev/null
        ip addr add "$addr/$len" dev "$iface"
        [ -n "$router" ] && ip route replace default via "$router" dev "$iface"
        ;;
    release|expire|deconfig|stop)
        ip -4 addr flush dev "$iface" 2>/dev/null
        ;;
esac
exit 0
