#!/bin/sh
# A stand-in for OpenWrt's /etc/rc.common and procd.sh: runs ACTION of an
# OpenWrt init script and writes every procd_* call, one per line (the words
# separated by tabs), to $PROCD_LOG. Nothing is started.
# Usage: PROCD_LOG=FILE procd-shim.sh INIT-SCRIPT start|reload|vars
set -e
: "${PROCD_LOG:?PROCD_LOG not set}"
script=$1 action=$2

record() {
	{
		printf '%s' "$1"
		shift
		for w in "$@"; do printf '\t%s' "$w"; done
		printf '\n'
	} >>"$PROCD_LOG"
}
for f in procd_open_service procd_close_service procd_open_instance \
	procd_close_instance procd_set_param procd_append_param \
	procd_add_reload_trigger procd_add_config_trigger \
	procd_add_interface_trigger procd_add_raw_trigger procd_open_trigger \
	procd_close_trigger procd_add_jail procd_add_jail_mount \
	procd_add_validation procd_kill procd_running; do
	eval "$f() { record $f \"\$@\"; }"
done

. "$script"

start() {
	procd_open_service "$(basename "$script")"
	start_service
	if type service_triggers >/dev/null 2>&1; then service_triggers; fi
	procd_close_service
}

case "$action" in
start) start ;;
reload)
	if type reload_service >/dev/null 2>&1; then reload_service; else start; fi
	;;
vars) echo "START=$START STOP=$STOP USE_PROCD=$USE_PROCD" ;;
*) echo "procd-shim: unknown action $action" >&2; exit 2 ;;
esac
