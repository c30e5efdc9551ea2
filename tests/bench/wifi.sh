#!/bin/bash
# tests/bench/wifi.sh - the WiFi issue's figures, pathman and Debian's ConnMan (connmand 1.41)
# side by side in ONE VM-tier guest (tests/vm: QEMU, stock Debian kernel, mac80211_hwsim
# radios, real hostapd, real wpa_supplicant -u on a private bus). Needs root. The guest script is
# tests/vm/bench-wifi.sh, the bus-side measurements tests/bench/tools/wifi_bench.py.
#
# Usage: wifi.sh [--rounds R] [--debug] [--no-noacd] [--alt BIN] [--out DIR] [--timeout S]
#   --report DIR: no guest, print the table of an earlier run's DIR again (--alt as it was run).
#   --alt BIN: a second pathman binary (e.g. a build with a candidate fix) measured in the same
#   guest after ConnMan; its rows say "[alt]" and never stand for the binary under test.
#   1. Service.Connect (WPA2-PSK "pm-roam", passphrase saved in the service's settings file,
#      AutoConnect off, Disconnect before every round) -> PropertyChanged State ready|online with
#      an IPv4 address: median of R (default 5) rounds each. Target: pathman <= 0.7 x ConnMan.
#      Connect's method return is measured too (raw data). pathman's AddressConflictDetection
#      (ARP probes, default on) has no ConnMan counterpart: pathman is measured again with it off.
#   2. 20 open BSSes on one hwsim radio (hostapd bss= sections) -> the 20th of their services on
#      net.connman (ServicesChanged), after the last wpa_supplicant ScanDone before it, both
#      signals timestamped by one GLib client that listens before the daemon starts (its first
#      scan with WiFi enabled in the saved state). One sample per daemon. Target: <= 200 ms.
#   3. VmHWM (/proc/PID/status) with 1 wifi service ready, 2 ethernet services ready (veth pairs,
#      dnsmasq behind them) and the 20 + 1 networks known, read after all the above.
#      Target: pathman <= 3.2 MB (3276.8 kB) with the static musl build.
#   4. Roaming: two BSSes of pm-roam (two radios, bridged, one dnsmasq), a TCP echo flow (a line
#      each 50 ms) to a server behind them, wpa_supplicant's Interface.Roam to the other BSS and
#      back. Target: address, routes via wlan0 and default routes unchanged, the flow survives.
# Timings come from TCG emulation: they are relative (pathman vs ConnMan in the same guest),
# never absolute. No figure is asserted: the script reports (exit 0 when the guest ran).
# Raw data: DIR (default /tmp/pm-bench/wifi-<timestamp>): result.txt, logs/, summary.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
ARGS=("$@")
ROUNDS=5; DEBUG=0; NOACD=1; TIMEOUT=1500; ALT=""; REPORT=0
OUT=/tmp/pm-bench/wifi-$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds)   ROUNDS=$2; shift ;;
        --debug)    DEBUG=1 ;;
        --no-noacd) NOACD=0 ;;
        --alt)      ALT=$(readlink -f "$2"); shift ;;
        --out)      OUT=$2; shift ;;
        --report)   OUT=$2; REPORT=1; shift ;;
        --timeout)  TIMEOUT=$2; shift ;;
        -h|--help)  sed -n '2,30p' "$0"; exit 0 ;;
        *)          echo "wifi.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_init wifi.sh "$0" "${ARGS[@]+"${ARGS[@]}"}"
command -v connmand >/dev/null || log "connmand not installed: its columns are n/a"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
rc=0
if [ "$REPORT" = 0 ]; then
    log "guest run in $OUT (console: $OUT/console.log)"
    "$REPO/tests/vm/vm.sh" run --timeout "$TIMEOUT" "$OUT" "$REPO/tests/vm/bench-wifi.sh" \
        "$PATHMAN" "$ROUNDS" "$DEBUG" "$NOACD" ${ALT:+"$ALT"} >"$OUT/vm.log" 2>&1 || rc=$?
else
    ROUNDS=$(sed -n 's/^rounds=//p' "$OUT/result.txt")
    PATHMAN=$(sed -n 's/^pm_binary=//p' "$OUT/result.txt" | sed -n 1p)
    [ -z "$ALT" ] && ALT=$(sed -n 's/^pa_binary=//p' "$OUT/result.txt" | sed -n 1p)
    grep -q '^pn_' "$OUT/result.txt" || NOACD=0
fi
[ "$rc" = 0 ] || log "the guest ended with $rc (see $OUT/vm.log, $OUT/console.log); the figures it did record follow"
[ -f "$OUT/result.txt" ] || { echo "wifi.sh: no result.txt from the guest" >&2; tail -20 "$OUT/vm.log" >&2; exit 1; }

val() { local v; v=$(sed -n "s/^$1=//p" "$OUT/result.txt" | tail -1); echo "${v:-n/a}"; }
num() { local v; v=$(val "$1"); case "$v" in ''|*[!0-9.-]*) echo n/a ;; *) echo "$v" ;; esac; }
yn() { local v; v=$(val "$1"); echo "${v:-n/a}"; }
mb() { awk -v k="$1" 'BEGIN { if (k ~ /^[0-9]+$/) printf "%.2f", k/1024; else print "n/a" }'; }
yes_verdict() { if [ "$1" = yes ]; then echo met; elif [ "$1" = no ]; then echo "NOT met"; else echo n/a; fi; }

cm_conn=$(num cm_conn_ready_ms_median); cm_scan=$(num cm_scan_after_scandone_ms); cm_hwm=$(mb "$(val cm_vmhwm_kb)")
# phase_ms T FROM TO - median over T's connect rounds of TO's time minus FROM's (FROM empty: the
# Connect call) from the T_conn_states_<r>= lines (state@ms,...)
phase_ms() {
    sed -n "s/^$1_conn_states_[0-9]*=//p" "$OUT/result.txt" | awk -F, -v f="$2" -v t="$3" '{
        a = (f == "") ? 0 : -1; b = -1
        for (i = 1; i <= NF; i++) { split($i, kv, "@"); if (kv[1] == f && a < 0) a = kv[2]; if (kv[1] == t && b < 0) b = kv[2] }
        if (a >= 0 && b >= 0) print b - a }' | median
}
# figures T LABEL - the rows of the pathman phase with result tag T (pm, pa) beside ConnMan's
figures() {
    local t=$1 l=$2 conn scan hwm
    conn=$(num "${t}_conn_ready_ms_median"); scan=$(num "${t}_scan_after_scandone_ms"); hwm=$(mb "$(val "${t}_vmhwm_kb")")
    row "${l}1. Connect -> ready + IPv4 (median), ms" "$conn" "$cm_conn" "<= 0.7 x ConnMan" "$(verdict "$(ratio "$conn" "$cm_conn")" "<=" 0.7)"
    row "${l}   Connect's method return (median), ms" "$(num "${t}_conn_reply_ms_median")" "$(num cm_conn_reply_ms_median)" "(reference)" ""
    row "${l}   of which Connect -> configuration (median)" "$(phase_ms "$t" "" configuration)" "$(phase_ms cm "" configuration)" "(reference)" ""
    row "${l}   of which configuration -> ready (median)" "$(phase_ms "$t" configuration ready)" "$(phase_ms cm configuration ready)" "(reference)" ""
    row "${l}   rounds that reached ready" "$(val "${t}_conn_rounds_ok")" "$(val cm_conn_rounds_ok)" "all" "" "-"
    row "${l}2. ScanDone -> 20th service on the bus, ms" "$scan" "$cm_scan" "<= 200" "$(verdict "$scan" "<=" 200)"
    row "${l}   20 scan services seen" "$(val "${t}_scan_services")" "$(val cm_scan_services)" "20" "" "-"
    # above the target with fewer services is NOT met all the more; at or below it only counts
    # when the wifi service and both wired ones were up and the 21 networks known
    local hv; hv=$(verdict "$hwm" "<=" 3.2)
    if [ "$hv" = met ] && { [ "$(val "${t}_svc_wifi_ready")" != 1 ] || [ "$(val "${t}_svc_ethernet_ready")" != 2 ] \
        || [ "$(val "${t}_svc_wifi_services")" -lt 21 ] 2>/dev/null; }; then hv="n/a (services not all up)"; fi
    [ "$hv" = "NOT met" ] && [ "$(val "${t}_svc_wifi_ready")" != 1 ] && hv="NOT met (even without wifi)"
    row "${l}3. VmHWM, 1 wifi + 2 eth + 21 APs, MB" "$hwm" "$cm_hwm" "<= 3.2" "$hv"
    row "${l}   services then (wifi ready / eth ready)" "$(val "${t}_svc_wifi_ready")/$(val "${t}_svc_ethernet_ready")" "$(val cm_svc_wifi_ready)/$(val cm_svc_ethernet_ready)" "1/2" "" "-"
    row "${l}4. roam x2: address unchanged" "$(yn "${t}_roam_addr_same")" "$(yn cm_roam_addr_same)" "yes" "$(yes_verdict "$(yn "${t}_roam_addr_same")")" "-"
    row "${l}   routes via wlan0 (all tables) unchanged" "$(yn "${t}_roam_routes_same")" "$(yn cm_roam_routes_same)" "yes" "$(yes_verdict "$(yn "${t}_roam_routes_same")")" "-"
    row "${l}   default routes (all tables) unchanged" "$(yn "${t}_roam_defaults_same")" "$(yn cm_roam_defaults_same)" "yes" "$(yes_verdict "$(yn "${t}_roam_defaults_same")")" "-"
    row "${l}   TCP flow survived" "$(yn "${t}_roam_flow_ok")" "$(yn cm_roam_flow_ok)" "yes" "$(yes_verdict "$(yn "${t}_roam_flow_ok")")" "-"
    row "${l}   longest gap between echoes, ms" "$(num "${t}_roam_flow_max_gap_ms")" "$(num cm_roam_flow_max_gap_ms)" "(reference)" ""
    row "${l}   both roams completed (supplicant)" "$(yn "${t}_roam_roams_ok")" "$(yn cm_roam_roams_ok)" "yes" "" "-"
}
{
    bench_header "wifi.sh: VM tier (TCG guest, $(sed -n 's/.*booting \([^ ]*\) (\([^,]*\),.*/\1, \2/p' "$OUT/vm.log" | sed -n 1p)), $ROUNDS connect rounds each"
    [ -z "$ALT" ] || echo "[alt] rows: $ALT ($(sha256sum "$ALT" | cut -c1-12)…), NOT the binary under test"
    echo "timings are from software emulation (TCG): compare pathman with ConnMan in the same guest, not with real hardware"
    row_head
    noacd() {
        [ "$NOACD" = 1 ] || return 0
        local pn; pn=$(num pn_conn_ready_ms_median)
        row "${1}1. same, pathman ACD off (as ConnMan), ms" "$pn" "$cm_conn" "<= 0.7 x ConnMan" "$(verdict "$(ratio "$pn" "$cm_conn")" "<=" 0.7)"
        row "${1}   rounds that reached ready, ACD off" "$(val pn_conn_rounds_ok)" "$(val cm_conn_rounds_ok)" "all" "" "-"
    }
    figures pm ""
    [ -n "$ALT" ] || noacd ""
    [ -z "$ALT" ] || { figures pa "[alt] "; noacd "[alt] "; }
    echo "service states during the roams: pathman: $(val pm_roam_states); ConnMan: $(val cm_roam_states)${ALT:+; [alt]: $(val pa_roam_states)}"
    for t in pm pa pn cm; do
        r=$(sed -n "s/^${t}_conn_ready_ms_[0-9]*=//p" "$OUT/result.txt" | paste -sd' ')
        [ -z "$r" ] || echo "connect rounds, ready ms ($t): $r"
        r=$(sed -n "s/^${t}_conn_states_[0-9]*=//p" "$OUT/result.txt" | paste -sd' ')
        [ -z "$r" ] || echo "  states, ms after Connect ($t): $r"
        r=$(grep -E "^${t}_vmhwm_after_" "$OUT/result.txt" | sed "s/^${t}_vmhwm_//" | paste -sd' ')
        [ -z "$r" ] || echo "  VmHWM ($t): $r"
    done
    grep -E '^(pm|cm|pn|pa)_[a-z]+_(error|round[0-9]+|roam[0-9]_error)=' "$OUT/result.txt" | sed 's/^/problem: /' || true
} | tee "$OUT/summary.txt"
echo "raw data: $OUT (result.txt, logs/)" >&2
