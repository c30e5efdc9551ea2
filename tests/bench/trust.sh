#!/bin/bash
# tests/bench/trust.sh - the trust issue's figures (issue 7), each with its target and
# verdict, ConnMan 1.41 beside pathman where it has the feature. Needs root; one lab with
# 2 uplinks, removed on exit (also when interrupted).
#
#   1. memory under oversized D-Bus calls: VmHWM after settling, then after N (default 10)
#      SetProperty calls of 30 MiB each from uid 65534 (pathman refuses them as they stream
#      in; target: peak <= 2x the baseline), and what ConnMan's VmHWM does with the same.
#   2. a settings file of 80 000 keys in one group: CPU time of pathman's start until the
#      bus name is owned (target: well under a second; it was 16 s).
#   3. SIGKILL + restart: netlink changes to the uplinks' addresses, routes and rules the
#      restart makes (ip monitor; target 0) and the MPTCP endpoints kept (same ids).
# Usage: trust.sh [--calls N]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
ARGS=("$@")
CALLS=10
while [ $# -gt 0 ]; do
    case "$1" in
        --calls) CALLS=$2; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "trust.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_init trust.sh "$0" "${ARGS[@]+"${ARGS[@]}"}"
ID=bt$$
bench_lab "$ID"
SVC=ethernet_02504d000001_cable

hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
big_calls() {   # as uid 65534: N x 30 MiB SetProperty, prints the error names
    "$LAB" exec "$ID" setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c "
import dbus
b = dbus.SystemBus()
s = b.get_object('net.connman', '/net/connman/service/$SVC')
big = 'a' * (30 * 1024 * 1024)
for i in range($CALLS):
    try:
        s.SetProperty('Domains.Configuration', dbus.Array([big], signature='s'),
                      dbus_interface='net.connman.Service', timeout=120)
        print('accepted')
    except dbus.DBusException as e:
        print(e.get_dbus_name())
" 2>&1
}
wait_services() {   # N: until connmanctl shows N services with a state
    local end=$(( $(date +%s) + 30 ))
    # connmanctl's third column is the state: R ready, O online.
    until [ "$("$LAB" exec "$ID" connmanctl services 2>/dev/null | awk 'substr($0, 3, 1) ~ /[RO]/' | grep -c . || true)" -ge "$1" ]; do
        [ "$(date +%s)" -lt $end ] || { log "services not ready"; return 1; }
        sleep 0.1
    done
}

log "lab up"
"$LAB" up "$ID" 2 >/dev/null
"$LAB" bus "$ID" start >/dev/null
OUTPUT=$(mktemp)
{
bench_header "trust figures (issue 7 targets)"
row_head

# 1. oversized calls
pm_hwm=n/a; pm_after=n/a; pm_refused=0; cm_hwm=n/a; cm_after=n/a
"$LAB" daemon "$ID" start >/dev/null 2>&1
"$LAB" wait-name "$ID" net.connman 10 >/dev/null
wait_services 2
pid=$("$LAB" daemon "$ID" pid)
pm_hwm=$(hwm "$pid")
pm_refused=$(big_calls | grep -c LimitsExceeded || true)
pm_after=$(hwm "$pid")
"$LAB" daemon "$ID" stop >/dev/null
"$LAB" reset "$ID" >/dev/null
if command -v connmand >/dev/null; then
    "$LAB" connman "$ID" start >/dev/null 2>&1
    "$LAB" wait-name "$ID" net.connman 10 >/dev/null
    wait_services 2 || true
    cpid=$("$LAB" connman "$ID" pid)
    cm_hwm=$(hwm "$cpid")
    big_calls >/dev/null || true
    cm_after=$(hwm "$cpid")
    "$LAB" connman "$ID" stop >/dev/null
    "$LAB" reset "$ID" >/dev/null
fi
row "VmHWM after settling, kB" "$pm_hwm" "$cm_hwm" "(baseline)" "-"
row "VmHWM after $CALLS x 30 MiB SetProperty (uid 65534), kB" "$pm_after" "$cm_after" \
    "<= 2 x baseline" "$(verdict "$pm_after" "<=" "$(( ${pm_hwm:-0} * 2 ))")"
row "  calls refused with LimitsExceeded (of $CALLS)" "$pm_refused" "-" "$CALLS" \
    "$(verdict "$pm_refused" "==" "$CALLS")" "-"

# 2. a settings file with 80 000 keys
st=$("$LAB" dir "$ID")/state
mkdir -p "$st/$SVC"
{ echo "[$SVC]"; for i in $(seq 80000); do echo "K$i=v"; done; echo "AutoConnect=true"; } >"$st/$SVC/settings"
t0=$(now_ns)
"$LAB" daemon "$ID" start >/dev/null 2>&1
"$LAB" wait-name "$ID" net.connman 30 >/dev/null
t1=$(now_ns)
pid=$("$LAB" daemon "$ID" pid)
cpu_ms=$(awk '{printf "%d", ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$pid/stat")
row "start with an 80000-key settings file -> bus, ms" "$(( (t1 - t0) / 1000000 ))" "-" "(reported)" "-" "-"
row "  CPU time of that start, ms" "$cpu_ms" "-" "<= 1000" "$(verdict "$cpu_ms" "<=" 1000)" "-"
"$LAB" daemon "$ID" stop >/dev/null
"$LAB" reset "$ID" >/dev/null

# 3. SIGKILL + restart with MultipathRouting: churn and endpoints
"$LAB" daemon "$ID" start --mpathrouting >/dev/null 2>&1
"$LAB" wait-name "$ID" net.connman 10 >/dev/null
wait_services 2
end=$(( $(date +%s) + 30 ))
until [ "$("$LAB" exec "$ID" ip mptcp endpoint show | grep -c .)" -ge 4 ]; do
    [ "$(date +%s)" -lt $end ] || break
    sleep 0.1
done
before=$("$LAB" exec "$ID" ip mptcp endpoint show)
mon=$(mktemp)
"$LAB" exec "$ID" stdbuf -oL ip monitor address route rule >"$mon" 2>/dev/null &
BENCH_PIDS+=($!)
# ip monitor is subscribed once it reports a rule we add and remove.
end=$(( $(date +%s) + 10 ))
until grep -q 203.0.113.77 "$mon"; do
    "$LAB" exec "$ID" ip rule add from 203.0.113.77 lookup 977 priority 31977 2>/dev/null || true
    "$LAB" exec "$ID" ip rule del from 203.0.113.77 lookup 977 priority 31977 2>/dev/null || true
    [ "$(date +%s)" -lt $end ] || break
done
"$LAB" daemon "$ID" kill >/dev/null
t0=$(now_ns)
"$LAB" daemon "$ID" start --mpathrouting >/dev/null 2>&1
"$LAB" wait-name "$ID" net.connman 10 >/dev/null
wait_services 2
t1=$(now_ns)
# Ready is reported after the first reconcile, which is where churn would be.
churn=$(grep -v 203.0.113.77 "$mon" | grep -E 'proto 196| inet 198\.18\.' | grep -c . || true)
after=$("$LAB" exec "$ID" ip mptcp endpoint show)
same=$([ "$before" = "$after" ] && echo 1 || echo 0)
row "restart -> 2 services ready again, ms" "$(( (t1 - t0) / 1000000 ))" "-" "(reported)" "-" "-"
row "  netlink changes to the uplinks by the restart" "$churn" "-" "0" "$(verdict "$churn" "==" 0)" "-"
row "  MPTCP endpoints identical (ids too), 1 = yes" "$same" "-" "1" "$(verdict "$same" "==" 1)" "-"
rm -f "$mon"
} | tee "$OUTPUT"
rm -f "$OUTPUT"
