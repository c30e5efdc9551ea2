#!/bin/bash
# tests/lab/lab.sh - pathman's network-namespace test lab (the only one: Rust integration
# tests, tests/demo.sh and tests/bench/* all use it).
#
# Usage: lab.sh COMMAND ID [ARGS...]        (root; ID = short [A-Za-z0-9] string, unique
#                                           per lab, e.g. t<pid>x<counter>)
#   up ID N [--rate RATE] [--no-ipv6] [--inet] [--ntp] [--ifnames a,b,c]
#                     build lab ID with N upstreams (an old lab ID is torn down first)
#   down ID [--save DIR]   stop everything, delete namespaces and state (copy logs and
#                     configs to DIR first with --save); safe to call twice
#   link ID K down|up|wan-down|wan-up|blackhole|restore   carrier loss/return on the DUT link
#                     of upstream K (wan-*: the upstream's own internet link, needs --inet);
#                     blackhole: upstream K silently drops what it forwards between the DUT
#                     and the internet (links stay up; its DHCP, DNS, NTP keep answering);
#                     restore: forwards again
#   http ID MODE      restart the internet HTTP responder (needs --inet) in MODE: online
#                     (default), portal, redirect, hang, huge, garbage (see tests/lab/
#                     http-responder.py); log: http-inet.log (started anew), a line a request
#   dhcp ID K stop|start   stop/restart upstream K's dnsmasq (DHCP, RA, DNS)
#   dnsmasq-conf ID K LINE...   restart upstream K's dnsmasq with LINEs added to its config
#                     (a dhcp-option=N,... / option:NAME line replaces the lab's own for N)
#   standin ID K start [ARGS...]|stop   replace upstream K's dnsmasq by tests/lab/
#                     hostile_dhcp.py ARGS (log: upK/standin.log); stop, then dhcp start: back
#   ntp ID K hostile MODE|start|stop   upstream K's NTP server: replace chronyd by tests/lab/
#                     hostile_ntp.py serve --mode MODE (log: upK/ntp-hostile.log); start:
#                     chronyd -x again (also on a lab without --ntp); stop: neither
#   bus ID start|stop|address   the lab's private D-Bus system bus
#   exec ID CMD...    run CMD in the DUT netns (DBUS_SYSTEM_BUS_ADDRESS = lab bus)
#   exec-up ID K CMD...   run CMD in upstream K's netns
#   daemon ID start|stop|kill|pid [ARGS...]   pathman in the DUT sandbox ($PATHMAN,
#                     default <repo>/target/release/pathman); start restarts a running one
#                     (PM_STATE_RO=1: its state dir is mounted read-only for it)
#   connman ID start|stop|kill|pid [ARGS...]  Debian's connmand the same way (fresh
#                     /var/lib/connman on every start unless CM_KEEP_STATE=1; TimeUpdates
#                     manual unless CM_TIME_UPDATES=auto: it still cannot set the clock)
#   reset ID          daemons must be stopped: DUT interfaces down and flushed, DUT routes,
#                     rules, nftables and MPTCP endpoints cleared, daemon state removed
#                     ("first boot" again; used by benchmarks between cold starts)
#   wpa ID start [ARGS...]|stop|kill|pid|ctl METHOD [ARGS...]   tests/lab/
#                     fake_wpa_supplicant.py ARGS in the DUT netns on the lab bus (owns
#                     fi.w1.wpa_supplicant1; a running one is restarted; start returns once
#                     the name is owned; log: wpa.log); kill = SIGKILL (a crashed
#                     supplicant); ctl: call net.pathman.test.FakeSupplicant.METHOD on
#                     /net/pathman/test, each ARG a JSON value typed by the method's
#                     signature (e.g. ctl AddBss eth0 '{"ssid":"lab","bssid":"02:00:00:
#                     00:01:01","security":"psk","passphrase":"secret123"}'); prints the
#                     reply as JSON (tests/lab/wpa_trace.py ctl). Needs the lab bus (bus ID
#                     start). WPA_REAL=1 start: the real wpa_supplicant -u (ARGS passed to
#                     it, e.g. -dd) instead of the fake.
#                     A wifi device for pathman: the fake never touches the link, so give
#                     the DUT's veth a board config (pathman daemon --board FILE) with
#                         [Board]
#                         Name=lab-wifi
#                         [Interface eth0]
#                         Technology=wifi
#                     (src/config/board.rs: the board's Technology overrides sysfs DEVTYPE)
#   ofono ID start [MODEM-FLAGS...]|stop|pid|ctl CMD [ARGS...]   a simulated cellular
#                     modem for Debian's real ofonod: tests/lab/at_modem.py serve
#                     MODEM-FLAGS (an AT-command server on 127.0.0.1:12345 in the DUT netns;
#                     flags --imsi, --operator, --mccmnc, --sim ready|pin|absent, --pin,
#                     --reg home|roaming|denied|searching|none, --attach ok|fail,
#                     --activate ok|error|cme, --csq N) and ofonod -n -d -p phonesim,atmodem
#                     (its built-in phonesim plugin dials the server; keyfile
#                     ofono/phonesim.conf via OFONO_PHONESIM_CONFIG) in the DUT sandbox with a
#                     private tmpfs /var/lib/ofono, on the lab bus (bus ID start first). A
#                     running pair is restarted (fresh state; phonesim's dummyN counter starts
#                     at dummy0 again); start returns once org.ofono lists the modem
#                     /phonesim. Logs: ofono/at.log (every AT line: RX/TX/URC/CTL; appended,
#                     a "=== at-modem start" line per start),
#                     ofono/ofonod.log (OFONO_AT_DEBUG=1 -d). ctl: one runtime knob (imsi,
#                     operator, sim, reg, attach, activate, csq N, detach, urc LINE,
#                     state; see at_modem.py), prints its one-line reply.
#                     The modem's data interface is dummy0: build the lab with
#                     --ifnames dummy0 and upstream 1's dnsmasq answers DHCP on it
#   fakeofono ID start [ARGS...]|stop|kill|pid|ctl METHOD [ARGS...]   tests/lab/
#                     fake_ofono.py ARGS (e.g. --modem '{"name":"fake_0","apn":"lab"}',
#                     --no-modem, --activation-ms N) in the DUT netns on the lab bus (owns
#                     org.ofono; a running one is restarted; start returns once the name is
#                     owned; log: fakeofono.log); kill = SIGKILL; ctl: call net.pathman.test.
#                     FakeOfono.METHOD on /net/pathman/test, s/o ARGs as they are, others JSON
#                     (e.g. ctl FailNext /fake_0/context1 org.ofono.Error.Failed, ctl
#                     SetSettings /fake_0/context1 '{"Method":"bogus","Netmask":{"@u":0}}');
#                     prints the reply as JSON. Needs the lab bus. The fake never touches
#                     links: the Interface its Settings name (default eth0) must exist.
#                     Contexts are kept per IMSI in fakeofono-state/ across restarts (as
#                     oFono keeps them); start --state-dir '' for none.
#   lan ID add NAME [MAC] | exec NAME CMD... | client NAME udhcpc|dhclient|dhcpcd start|renew|release|stop|pid
#                     a LAN client for tethering: namespace pm-ID-cNAME whose eth0 (MAC, default
#                     02:50:4d:20:00:NN) is a veth to NAME (a LAN port) in the DUT netns, left down
#                     in the DUT; NAME joins the -i list daemon start gives pathman. exec runs CMD there with private /etc (copy-on-write, upper in
#                     cNAME/etc), /var/lib/dhcp, /var/lib/dhcpcd, /run/dhcpcd (in cNAME/mnt): a client's resolv.conf
#                     and lease writes stay in the lab. client: the real DHCP client, foreground,
#                     its script tests/lab/dhcp-client-script.sh (sets the address and default
#                     route, logs each event to cNAME/script.log: "<client> <event> <ip>/<len>
#                     router <r> dns <d>"); log cNAME/<client>.log; renew/release as each client
#                     does it (SIGUSR1/SIGUSR2 udhcpc, dhclient -r, dhcpcd -n/-k; dhclient renews at T1 only)
#   wait-name ID NAME [SECONDS]   wait until NAME is owned on the lab bus (default 10 s)
#   resolv ID         print the resolv.conf the daemon wrote (its private /etc/resolv.conf)
#   info ID           namespaces, interfaces, state dir, bus address, pids
#   ifname ID K | ns ID dut|inet|K | dir ID   print one name / path
#   list              ids of existing labs;   gc   tear down labs whose owner is dead
#
# Topology (K = 1..N):
#   pm-ID-dut: <ifname K> (default eth{K-1}, MAC 02:50:4d:00:00:0K, left DOWN)
#        <veth> pm-ID-upK: down0 198.18.K.1/24 fd18:K::1/64, dnsmasq DHCPv4 .100-.199 1h
#               (router, DNS, NTP = 198.18.K.1, domain upK.lab.test) + RA/SLAAC (+DHCPv6),
#               TX checksum offload off; optional tbf rate; --ntp: chronyd -x server
#   --inet: pm-ID-upK wan0 198.19.K.2 fd19:K::2 <veth> pm-ID-inet upK 198.19.K.1 fd19:K::1,
#           pm-ID-inet lo 198.19.0.1/32 fd19::1/128 with an HTTP responder on :80
#           (server.lab.test, ipv4.connman.net, ipv6.connman.net resolve to it)
# All state under /tmp/pm-lab/ID (PM_LAB_ROOT overrides /tmp/pm-lab). Every process the lab
# starts has CAP_SYS_TIME removed from its bounding set. Nothing outside the lab's own
# namespaces is changed (the daemon sandbox uses private mount/UTS namespaces and a
# copy-on-write /etc whose changes land in /tmp/pm-lab/ID/etc/upper).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
ROOT=${PM_LAB_ROOT:-/tmp/pm-lab}
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit "${1:-1}"; }

# ------------------------------------------------------------------ names and state
set_id() {
    ID=${1:-}
    [[ $ID =~ ^[A-Za-z0-9]{1,24}$ ]] || die "bad lab id '$ID' (want 1-24 chars [A-Za-z0-9])"
    S=$ROOT/$ID
    DUT=pm-$ID-dut
    INET=pm-$ID-inet
    ADDR=unix:path=$S/bus.sock
}
up_ns() { echo "pm-$ID-up$1"; }
ns_exists() { [ -e "/run/netns/$1" ]; }
lab_nss() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^pm-$ID-(dut|inet|up[0-9]+|c[a-z0-9]+)\$" || true; }
need_lab() { if ! ns_exists "$DUT" || [ ! -f "$S/n" ]; then die "lab $ID is not up"; fi; }
lab_n() { cat "$S/n"; }
ifname_of() { sed -n "${1}p" "$S/ifnames"; }
ifnames_csv() { { cat "$S/ifnames"; cat "$S/lanports" 2>/dev/null || true; } | paste -sd, -; }
check_k() { if ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt "$(lab_n)" ]; then die "no upstream $1 in lab $ID"; fi; }

# ------------------------------------------------------------------ processes
# alive PID: exists and is not a zombie
alive() {   # any thread of PID not yet dead (a killed leader is a zombie while its
            # other threads still close the process's sockets)
    local t st
    for t in /proc/"$1"/task/*/stat; do
        st=$(awk '{print $3}' "$t" 2>/dev/null) || continue
        if [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]; then return 0; fi
    done
    return 1
}
pid_of() { local f=$S/pids/$1.pid; [ -f "$f" ] && cat "$f"; }
running() { local p; p=$(pid_of "$1") && alive "$p"; }

# spawn NAME NETNS LOGFILE CMD...: background, all fds detached, CAP_SYS_TIME dropped
spawn() {
    local name=$1 ns=$2 logf=$3; shift 3
    mkdir -p "$S/pids"
    ip netns exec "$ns" setpriv --bounding-set -sys_time -- "$@" </dev/null >"$logf" 2>&1 &
    echo $! >"$S/pids/$name.pid"
}

# stop NAME [SIG]: TERM (or SIG), then KILL after 3 s; by recorded PID only
stop() {
    local name=$1 sig=${2:-TERM} pid
    pid=$(pid_of "$name") || return 0
    if alive "$pid"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for _ in $(seq 30); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        for _ in $(seq 20); do alive "$pid" || break; sleep 0.05; done
    fi
    rm -f "$S/pids/$name.pid"
}

wait_until() {   # wait_until SECONDS CMD...  (poll every 50 ms)
    local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

# ------------------------------------------------------------------ up
tbf() {   # tbf NS DEV RATE: rate limit with ~10 ms of burst, at least 16 KiB
    local r=${3,,} bits
    case "$r" in
        *gbit) bits=$(( ${r%gbit} * 1000000000 )) ;;
        *mbit) bits=$(( ${r%mbit} * 1000000 )) ;;
        *kbit) bits=$(( ${r%kbit} * 1000 )) ;;
        *bit)  bits=${r%bit} ;;
        *) die "rate must look like 20mbit / 500kbit / 1gbit" ;;
    esac
    local b=$(( bits / 8 / 100 )); [ $b -ge 16384 ] || b=16384
    tc -n "$1" qdisc replace dev "$2" root tbf rate "$3" burst "$b" latency 50ms
}

mkns() {   # a lab namespace: lo up, no DAD on the lab's own router addresses
    ip netns add "$1"
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

write_dnsmasq_conf() {   # K IPV6 -> $S/upK/dnsmasq.conf
    local k=$1 ipv6=$2 d=$S/up$1
    {
        echo "# pathman lab $ID, upstream $k"
        echo "interface=down0"
        echo "bind-dynamic"
        echo "no-resolv"
        echo "no-hosts"
        echo "no-poll"
        echo "user=root"
        echo "group=root"
        echo "pid-file=$d/dnsmasq.pid"
        echo "log-dhcp"
        echo "log-queries"
        echo "log-facility=$d/dnsmasq.log"
        echo "dhcp-leasefile=$d/dnsmasq.leases"
        echo "dhcp-authoritative"
        echo "no-ping"
        echo "dhcp-range=198.18.$k.100,198.18.$k.199,255.255.255.0,1h"
        echo "dhcp-option=option:router,198.18.$k.1"
        echo "dhcp-option=option:dns-server,198.18.$k.1"
        echo "dhcp-option=option:ntp-server,198.18.$k.1"
        echo "domain=up$k.lab.test"
        echo "address=/up$k.lab.test/198.18.$k.1"
        echo "address=/server.lab.test/198.19.0.1"
        echo "address=/ipv4.connman.net/198.19.0.1"
        if [ "$ipv6" = 1 ]; then
            echo "enable-ra"
            echo "ra-param=down0,10,600"
            echo "dhcp-range=fd18:$k::100,fd18:$k::1ff,slaac,64,1h"
            echo "dhcp-option=option6:dns-server,[fd18:$k::1]"
            echo "dhcp-option=option6:sntp-server,[fd18:$k::1]"
            echo "address=/server.lab.test/fd19::1"
            echo "address=/ipv6.connman.net/fd19::1"
        fi
    } >"$d/dnsmasq.conf"
}

start_dnsmasq() {   # K
    local d=$S/up$1
    spawn "dnsmasq-up$1" "$(up_ns "$1")" "$d/dnsmasq.stderr" \
        dnsmasq --keep-in-foreground --conf-file="$d/dnsmasq.conf"
}

start_chronyd() {   # K IPV6: chronyd -x (never touches the clock) serving upstream K
    local k=$1 ipv6=$2 d=$S/up$1
    {
        echo "local stratum 10"
        echo "allow 198.18.$k.0/24"
        if [ "$ipv6" = 1 ]; then echo "allow fd18:$k::/64"; fi
        echo "cmdport 0"
        echo "bindcmdaddress /"
        echo "pidfile $d/chronyd.pid"
    } >"$d/chrony.conf"
    spawn "chronyd-up$k" "$(up_ns "$k")" "$d/chronyd.log" chronyd -x -d -u root -f "$d/chrony.conf"
}

ntp_listening() { ip netns exec "$(up_ns "$1")" ss -Hlun 'sport = :123' | grep . >/dev/null; }

dhcp_listening() { ip netns exec "$(up_ns "$1")" ss -Hlun 'sport = :67' | grep . >/dev/null; }

up_failed() {
    local rc=$?
    if [ $rc -ne 0 ]; then log "up $ID failed (rc=$rc), cleaning up"; cmd_down >/dev/null 2>&1 || true; fi
}

cmd_up() {
    local n="" rate="" ipv6=1 inet=0 ntp=0 ifn_csv="" k
    while [ $# -gt 0 ]; do
        case "$1" in
            --rate)    rate=${2:?--rate needs a value}; shift ;;
            --no-ipv6) ipv6=0 ;;
            --inet)    inet=1 ;;
            --ntp)     ntp=1 ;;
            --ifnames) ifn_csv=${2:?--ifnames needs a list}; shift ;;
            [0-9]*)    n=$1 ;;
            *)         die "up: unknown argument '$1'" ;;
        esac
        shift
    done
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 9 ]; then die "up: N must be 1..9"; fi
    local -a ifn=()
    if [ -n "$ifn_csv" ]; then IFS=, read -r -a ifn <<<"$ifn_csv"; fi
    for ((k = ${#ifn[@]}; k < n; k++)); do ifn[k]=eth$k; done
    for ((k = 0; k < n; k++)); do
        [[ ${ifn[k]} =~ ^[A-Za-z][A-Za-z0-9_.-]{0,14}$ ]] || die "bad interface name '${ifn[k]}'"
    done

    # idempotent: an old lab with this id goes first
    if ns_exists "$DUT" || [ -d "$S" ] || [ -n "$(lab_nss)" ]; then cmd_down; fi
    trap up_failed EXIT

    mkdir -p "$S/pids" "$S/state" "$S/run" "$S/etc/upper" "$S/etc/work"
    echo "$n" >"$S/n"
    printf '%s\n' "${ifn[@]:0:n}" >"$S/ifnames"
    printf 'ipv6=%s\ninet=%s\nntp=%s\nrate=%s\n' "$ipv6" "$inet" "$ntp" "$rate" >"$S/opts"
    echo "${PM_LAB_OWNER:-$PPID}" >"$S/owner"
    echo "# pathman lab $ID: the DUT's private resolv.conf" >"$S/etc/upper/resolv.conf"

    ip netns add "$DUT"                 # the DUT keeps kernel defaults
    ip -n "$DUT" link set lo up
    if [ $inet = 1 ]; then
        mkns "$INET"
        ip -n "$INET" addr add 198.19.0.1/32 dev lo
        if [ $ipv6 = 1 ]; then ip -n "$INET" addr add fd19::1/128 dev lo; fi
    fi
    for ((k = 1; k <= n; k++)); do
        local up d
        up=$(up_ns $k); d=$S/up$k; mkdir -p "$d"
        mkns "$up"
        ip netns exec "$up" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
        ip -n "$DUT" link add "${ifn[k-1]}" address "$(printf '02:50:4d:00:00:%02x' $k)" \
            type veth peer name down0 address "$(printf '02:50:4d:01:00:%02x' $k)" netns "$up"
        ip -n "$up" addr add "198.18.$k.1/24" dev down0
        if [ $ipv6 = 1 ]; then ip -n "$up" addr add "fd18:$k::1/64" dev down0 nodad; fi
        ip -n "$up" link set down0 up
        ip netns exec "$up" "$PY" "$LAB_DIR/probe.py" txcsum down0 off >/dev/null \
            || die "could not turn TX checksum offload off on $up/down0"
        if [ -n "$rate" ]; then tbf "$up" down0 "$rate"; fi
        if [ $inet = 1 ]; then
            ip -n "$INET" link add "up$k" type veth peer name wan0 netns "$up"
            ip -n "$up" addr add "198.19.$k.2/24" dev wan0
            ip -n "$INET" addr add "198.19.$k.1/24" dev "up$k"
            ip -n "$up" link set wan0 up
            ip -n "$INET" link set "up$k" up
            ip -n "$up" route add default via "198.19.$k.1"
            ip -n "$INET" route add "198.18.$k.0/24" via "198.19.$k.2"
            if [ $ipv6 = 1 ]; then
                ip -n "$up" addr add "fd19:$k::2/64" dev wan0 nodad
                ip -n "$INET" addr add "fd19:$k::1/64" dev "up$k" nodad
                ip -n "$up" -6 route add default via "fd19:$k::1"
                ip -n "$INET" -6 route add "fd18:$k::/64" via "fd19:$k::2"
            fi
            if [ -n "$rate" ]; then tbf "$up" wan0 "$rate"; fi
        fi
        write_dnsmasq_conf $k $ipv6
        start_dnsmasq $k
        if [ $ntp = 1 ]; then start_chronyd $k $ipv6; fi
    done
    if [ $inet = 1 ]; then
        spawn http-inet "$INET" "$S/http-inet.log" "$PY" "$LAB_DIR/http-responder.py" --port 80
    fi

    for ((k = 1; k <= n; k++)); do
        wait_until 10 dhcp_listening $k || die "dnsmasq of upstream $k did not start: $(tail -3 "$S/up$k/dnsmasq.stderr")"
        if [ $ntp = 1 ]; then
            wait_until 10 ntp_listening $k || die "chronyd of upstream $k did not start: $(tail -3 "$S/up$k/chronyd.log")"
        fi
    done
    if [ $inet = 1 ]; then
        wait_until 10 sh -c "ip netns exec $INET ss -Hltn 'sport = :80' | grep . >/dev/null" \
            || die "HTTP responder did not start: $(tail -3 "$S/http-inet.log")"
    fi
    trap - EXIT
    log "lab $ID up: DUT $DUT (${ifn[*]:0:n}), upstreams $(up_ns 1)..$(up_ns "$n")$([ $inet = 1 ] && echo ", $INET"), state $S"
}

# ------------------------------------------------------------------ down
cmd_down() {
    local save="" f name ns pid
    if [ "${1:-}" = --save ]; then save=${2:?--save needs a directory}; fi
    if [ -n "$save" ] && [ -d "$S" ]; then
        mkdir -p "$save"
        (cd "$S" && find . -type f \( -name '*.log' -o -name '*.conf' -o -name '*.stderr' \
            -o -name '*.leases' -o -name 'resolv.conf' -o -name 'settings' \) -print0 \
            | xargs -0r cp --parents -t "$save") 2>/dev/null || true
    fi
    # 1. what we recorded: daemons first (they may still want to talk to dnsmasq/bus)
    if [ -d "$S/pids" ]; then
        for name in pathman connmand ofonod; do stop "$name"; done
        for f in "$S"/pids/*.pid; do
            [ -e "$f" ] || continue
            stop "$(basename "$f" .pid)"
        done
    fi
    # 2. anything else left in our namespaces
    local nss; nss=$(lab_nss)
    for sig in TERM KILL; do
        for ns in $nss; do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "-$sig" "$pid" 2>/dev/null || true; done
        done
        [ -z "$nss" ] || [ $sig = KILL ] || sleep 0.3
    done
    # 3. namespaces (their veths go with them)
    for ns in $nss; do ip netns del "$ns" 2>/dev/null || true; done
    # 4. state
    rm -rf "$S"
    if [ -n "$(lab_nss)" ]; then die "namespaces left behind: $(lab_nss | xargs)"; fi
    return 0
}

# ------------------------------------------------------------------ faults
cmd_link() {
    need_lab; check_k "${1:-}"
    local up; up=$(up_ns "$1")
    case "${2:-}" in
        down)     ip -n "$up" link set down0 down ;;
        up)       ip -n "$up" link set down0 up ;;
        wan-down) ns_exists "$INET" || die "lab $ID has no --inet"; ip -n "$up" link set wan0 down ;;
        wan-up)   ns_exists "$INET" || die "lab $ID has no --inet"; ip -n "$up" link set wan0 up
                  ip -n "$up" route replace default via "198.19.$1.1"
                  ip -n "$up" -6 route replace default via "fd19:$1::1" 2>/dev/null || true ;;
        blackhole) ns_exists "$INET" || die "lab $ID has no --inet"; blackhole "$up" add ;;
        restore)  ns_exists "$INET" || die "lab $ID has no --inet"; blackhole "$up" del ;;
        *)        die "link: want down|up|wan-down|wan-up|blackhole|restore" ;;
    esac
}

# blackhole NS add|del: policy rules after the local table's (priority 0), so traffic to
# the upstream's own addresses (DHCP, DNS, NTP) is still delivered, while everything it
# would forward from the DUT link or from the internet link is dropped without an ICMP error.
blackhole() {
    local ns=$1 op=$2 fam dev prio
    for fam in -4 -6; do
        prio=100
        for dev in down0 wan0; do
            while ip -n "$ns" "$fam" rule del priority $prio 2>/dev/null; do :; done
            if [ "$op" = add ]; then ip -n "$ns" "$fam" rule add priority $prio iif "$dev" blackhole; fi
            prio=$((prio + 1))
        done
    done
    ip -n "$ns" -4 route flush cache 2>/dev/null || true
}

http_listening() { ip netns exec "$INET" ss -Hltn 'sport = :80' | grep . >/dev/null; }

cmd_http() {
    need_lab; ns_exists "$INET" || die "lab $ID has no --inet"
    local mode=${1:-online}
    case "$mode" in online|portal|redirect|hang|huge|garbage) ;; *) die "http: unknown mode '$mode'" ;; esac
    stop http-inet
    wait_until 10 sh -c "! ip netns exec $INET ss -Hltn 'sport = :80' | grep . >/dev/null" \
        || die "port 80 still busy in $INET"
    spawn http-inet "$INET" "$S/http-inet.log" "$PY" "$LAB_DIR/http-responder.py" --port 80 --mode "$mode"
    wait_until 10 http_listening || die "HTTP responder did not start: $(tail -3 "$S/http-inet.log")"
}

cmd_dhcp() {
    need_lab; check_k "${1:-}"
    case "${2:-}" in
        stop)  stop "dnsmasq-up$1" ;;
        start) if ! running "dnsmasq-up$1"; then
                   start_dnsmasq "$1"
                   wait_until 10 dhcp_listening "$1" || die "dnsmasq of upstream $1 did not start"
               fi ;;
        *)     die "dhcp: want stop|start" ;;
    esac
}

# ------------------------------------------------------------------ hostile DHCP
# The option number a dnsmasq "dhcp-option=..." line sets (numeric or option:NAME).
dhcp_option_code() {
    local spec=${1#dhcp-option=}
    spec=${spec%%,*}
    case "$spec" in
        option:netmask) echo 1 ;; option:router) echo 3 ;; option:dns-server) echo 6 ;;
        option:domain-name) echo 15 ;; option:ntp-server) echo 42 ;;
        [0-9]*) echo "$spec" ;;
        *) echo "" ;;
    esac
}

cmd_dnsmasq_conf() {
    need_lab; check_k "${1:-}"
    local k=$1 d=$S/up$1 ipv6 line code kept; shift
    ipv6=$(sed -n 's/^ipv6=//p' "$S/opts")
    stop "standin-up$k"; stop "dnsmasq-up$k"
    write_dnsmasq_conf "$k" "$ipv6"
    for line in "$@"; do
        code=$(dhcp_option_code "$line")
        if [[ $line == dhcp-option=* ]] && [ -n "$code" ]; then
            kept=$(while IFS= read -r l; do
                if [[ $l == dhcp-option=* ]] && [ "$(dhcp_option_code "$l")" = "$code" ]; then continue; fi
                if [ "$code" = 15 ] && [[ $l == domain=* ]]; then continue; fi
                printf '%s\n' "$l"
            done <"$d/dnsmasq.conf")
            printf '%s\n' "$kept" >"$d/dnsmasq.conf"
        fi
        printf '%s\n' "$line" >>"$d/dnsmasq.conf"
    done
    dnsmasq --test --conf-file="$d/dnsmasq.conf" >/dev/null 2>&1 \
        || die "dnsmasq rejects the config: $(dnsmasq --test --conf-file="$d/dnsmasq.conf" 2>&1 | tail -2)"
    start_dnsmasq "$k"
    wait_until 10 dhcp_listening "$k" || die "dnsmasq of upstream $k did not start: $(tail -3 "$d/dnsmasq.stderr")"
}

cmd_standin() {
    need_lab; check_k "${1:-}"
    local k=$1 up; up=$(up_ns "$1"); shift
    case "${1:-}" in
        start)
            shift
            stop "dnsmasq-up$k"; stop "standin-up$k"
            wait_until 10 sh -c "! ip netns exec $up ss -Hlun 'sport = :67' | grep . >/dev/null" \
                || die "port 67 still busy on upstream $k"
            spawn "standin-up$k" "$up" "$S/up$k/standin.stderr" \
                "$PY" "$LAB_DIR/hostile_dhcp.py" --iface down0 --server "198.18.$k.1" \
                --log "$S/up$k/standin.log" "$@"
            wait_until 10 dhcp_listening "$k" \
                || die "stand-in DHCP server of upstream $k did not start: $(tail -3 "$S/up$k/standin.stderr")" ;;
        stop) stop "standin-up$k" ;;
        *) die "standin: want start [ARGS...]|stop" ;;
    esac
}

# ------------------------------------------------------------------ NTP: chronyd or hostile
cmd_ntp() {
    need_lab; check_k "${1:-}"
    local k=$1 d=$S/up$1 ipv6; shift
    ipv6=$(sed -n 's/^ipv6=//p' "$S/opts")
    case "${1:-}" in
        hostile)
            local mode=${2:-}
            [ -n "$mode" ] || die "ntp hostile: MODE missing (see tests/lab/hostile_ntp.py)"
            stop "chronyd-up$k"; stop "ntp-hostile-up$k"
            wait_until 10 sh -c "! ip netns exec $(up_ns "$k") ss -Hlun 'sport = :123' | grep . >/dev/null" \
                || die "port 123 still busy on upstream $k"
            spawn "ntp-hostile-up$k" "$(up_ns "$k")" "$d/ntp-hostile.stderr" \
                "$PY" "$LAB_DIR/hostile_ntp.py" serve --mode "$mode" --log "$d/ntp-hostile.log"
            wait_until 10 ntp_listening "$k" \
                || die "hostile NTP responder of upstream $k did not start: $(tail -3 "$d/ntp-hostile.stderr")" ;;
        start)
            stop "ntp-hostile-up$k"
            if ! running "chronyd-up$k"; then
                wait_until 10 sh -c "! ip netns exec $(up_ns "$k") ss -Hlun 'sport = :123' | grep . >/dev/null" \
                    || die "port 123 still busy on upstream $k"
                start_chronyd "$k" "$ipv6"
                wait_until 10 ntp_listening "$k" || die "chronyd of upstream $k did not start: $(tail -3 "$d/chronyd.log")"
            fi ;;
        stop) stop "ntp-hostile-up$k"; stop "chronyd-up$k" ;;
        *) die "ntp: want hostile MODE|start|stop" ;;
    esac
}

# ------------------------------------------------------------------ D-Bus
bus_conf() {
    local policy=$REPO/board-configs/dbus/pathman.conf
    cat <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- pathman lab $ID: private system bus. The project's policy file is included; the
     default policy after it lets root own any name and everyone call methods (tests). -->
<busconfig>
  <type>system</type>
  <listen>$ADDR</listen>
  <auth>EXTERNAL</auth>
  <include ignore_missing="yes">$policy</include>
  <policy context="default">
    <allow user="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>
  </policy>
  <policy user="root">
    <allow own="*"/>
    <!-- tests/lab/fake_wpa_supplicant.py (or the real one): lab.sh wpa ID start -->
    <allow own="fi.w1.wpa_supplicant1"/>
    <allow send_destination="*"/>
    <allow eavesdrop="true"/>
    <allow send_type="method_call" eavesdrop="true"/>
  </policy>
</busconfig>
XML
}

cmd_bus() {
    case "${1:-}" in
        start)
            need_lab
            if ! running dbus; then
                rm -f "$S/bus.sock"
                bus_conf >"$S/bus.conf"
                spawn dbus "$DUT" "$S/dbus.log" dbus-daemon --config-file="$S/bus.conf" --nofork --nopidfile --nosyslog
                wait_until 5 test -S "$S/bus.sock" || die "dbus-daemon did not start: $(tail -3 "$S/dbus.log")"
            fi
            echo "$ADDR" ;;
        stop)    stop dbus; rm -f "$S/bus.sock" ;;
        address) echo "$ADDR" ;;
        *)       die "bus: want start|stop|address" ;;
    esac
}

has_name() {
    dbus-send --bus="$ADDR" --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep true >/dev/null
}
cmd_wait_name() {
    [ -n "${1:-}" ] || die "wait-name: NAME missing"
    wait_until "${2:-10}" has_name "$1" || die "$1 not on the lab bus after ${2:-10} s"
}

# ------------------------------------------------------------------ fake wpa_supplicant
# The fake (or, with WPA_REAL=1, the real wpa_supplicant -u) in the DUT netns on the lab
# bus. It never touches the DUT's links; the client runs DHCP over the veth it names.
cmd_wpa() {
    need_lab
    local action=${1:-}; shift || true
    case "$action" in
        start)
            running dbus || die "wpa: start the lab bus first (lab.sh bus $ID start)"
            if running wpa; then log "wpa already running in lab $ID: restarting"; stop wpa; fi
            wait_until 5 sh -c "! dbus-send --bus='$ADDR' --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:fi.w1.wpa_supplicant1 2>/dev/null | grep true >/dev/null" \
                || die "fi.w1.wpa_supplicant1 is still owned on the lab bus"
            printf '=== wpa start %s: %s\n' "$(date '+%F %T.%3N')" "$*" >>"$S/wpa.log"
            mkdir -p "$S/pids"
            if [ "${WPA_REAL:-0}" = 1 ]; then
                command -v wpa_supplicant >/dev/null || die "wpa_supplicant is not installed"
                ip netns exec "$DUT" setpriv --bounding-set -sys_time -- \
                    env DBUS_SYSTEM_BUS_ADDRESS="$ADDR" wpa_supplicant -u "$@" </dev/null >>"$S/wpa.log" 2>&1 &
            else
                ip netns exec "$DUT" setpriv --bounding-set -sys_time -- \
                    env DBUS_SYSTEM_BUS_ADDRESS="$ADDR" "$PY" "$LAB_DIR/fake_wpa_supplicant.py" "$@" </dev/null >>"$S/wpa.log" 2>&1 &
            fi
            echo $! >"$S/pids/wpa.pid"
            wait_until 10 has_name fi.w1.wpa_supplicant1 \
                || die "wpa: fi.w1.wpa_supplicant1 not on the lab bus: $(tail -5 "$S/wpa.log")"
            log "wpa started in $DUT (pid $(pid_of wpa)), log $S/wpa.log" ;;
        stop) stop wpa ;;
        kill) stop wpa KILL ;;
        pid)  running wpa || die "wpa is not running"; pid_of wpa ;;
        ctl)
            local method=${1:-}; shift || true
            [ -n "$method" ] || die "wpa ctl: METHOD missing"
            DBUS_SYSTEM_BUS_ADDRESS="$ADDR" "$PY" "$LAB_DIR/wpa_trace.py" ctl "$method" "$@" ;;
        *) die "wpa: want start [ARGS...]|stop|kill|pid|ctl METHOD [ARGS...]" ;;
    esac
}

# ------------------------------------------------------------------ simulated modem + ofonod
# tests/lab/at_modem.py (the modem) and the real ofonod (phonesim plugin + atmodem drivers
# only: no udev, no provisioning, no BlueZ) in the DUT netns on the lab bus. ofonod keeps
# per-IMSI state under /var/lib/ofono: a tmpfs in its own mount namespace, so the host's
# is never read or written.
OFONO_PORT=12345
modem_ctl() { "$PY" "$LAB_DIR/at_modem.py" ctl "$S/ofono/modem.sock" "$@"; }
ofono_has_modem() {
    dbus-send --bus="$ADDR" --print-reply --dest=org.ofono / org.ofono.Manager.GetModems 2>/dev/null \
        | grep '"/phonesim"' >/dev/null
}
cmd_ofono() {
    need_lab
    local action=${1:-}; shift || true
    case "$action" in
        start)
            running dbus || die "ofono: start the lab bus first (lab.sh bus $ID start)"
            [ -x /usr/sbin/ofonod ] || die "ofonod is not installed (apt-get install ofono)"
            if running ofonod || running at-modem; then log "ofono already running in lab $ID: restarting"; fi
            stop ofonod; stop at-modem
            wait_until 5 sh -c "! dbus-send --bus='$ADDR' --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.ofono 2>/dev/null | grep true >/dev/null" \
                || die "org.ofono is still owned on the lab bus"
            local o=$S/ofono
            mkdir -p "$o"
            printf '# pathman lab %s: the AT server the phonesim plugin of ofonod dials\n[phonesim]\nAddress=127.0.0.1\nPort=%s\n' \
                "$ID" "$OFONO_PORT" >"$o/phonesim.conf"
            printf '=== at-modem start %s: %s\n' "$(date '+%F %T.%3N')" "$*" >>"$o/at.log"
            spawn at-modem "$DUT" "$o/at_modem.stderr" "$PY" "$LAB_DIR/at_modem.py" serve \
                --port "$OFONO_PORT" --ctl "$o/modem.sock" --log "$o/at.log" "$@"
            wait_until 5 sh -c "ip netns exec $DUT ss -Hltn 'sport = :$OFONO_PORT' | grep . >/dev/null && test -S '$o/modem.sock'" \
                || die "at_modem.py did not start: $(tail -3 "$o/at_modem.stderr")"
            local prep="if [ -d /var/lib/ofono ]; then mount -t tmpfs -o mode=0700 pm-lab-ofono /var/lib/ofono;"
            prep+=" else mount -t tmpfs -o mode=0755 pm-lab-varlib /var/lib; mkdir -m 0700 /var/lib/ofono; fi;"
            sandbox ofonod "$o/ofonod.log" "$prep" env OFONO_PHONESIM_CONFIG="$o/phonesim.conf" \
                OFONO_AT_DEBUG=1 /usr/sbin/ofonod -n -d -p phonesim,atmodem
            wait_until 10 ofono_has_modem \
                || die "ofonod did not list the modem: $(tail -5 "$o/ofonod.log")"
            log "ofono started in $DUT (ofonod pid $(pid_of ofonod), modem pid $(pid_of at-modem)), logs $o/at.log $o/ofonod.log" ;;
        stop) stop ofonod; stop at-modem ;;
        pid)  running ofonod || die "ofonod is not running"; pid_of ofonod ;;
        ctl)
            [ $# -ge 1 ] || die "ofono ctl: CMD missing"
            running at-modem || die "the simulated modem is not running (lab.sh ofono $ID start)"
            modem_ctl "$@" ;;
        *) die "ofono: want start [MODEM-FLAGS...]|stop|pid|ctl CMD [ARGS...]" ;;
    esac
}

# ------------------------------------------------------------------ fake oFono
# tests/lab/fake_ofono.py in the DUT netns on the lab bus, as the fake wpa_supplicant.
cmd_fakeofono() {
    need_lab
    local action=${1:-}; shift || true
    case "$action" in
        start)
            running dbus || die "fakeofono: start the lab bus first (lab.sh bus $ID start)"
            if running fakeofono; then log "fakeofono already running in lab $ID: restarting"; stop fakeofono; fi
            wait_until 5 sh -c "! dbus-send --bus='$ADDR' --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.ofono 2>/dev/null | grep true >/dev/null" \
                || die "org.ofono is still owned on the lab bus"
            printf '=== fakeofono start %s: %s\n' "$(date '+%F %T.%3N')" "$*" >>"$S/fakeofono.log"
            mkdir -p "$S/pids"
            ip netns exec "$DUT" setpriv --bounding-set -sys_time -- \
                env DBUS_SYSTEM_BUS_ADDRESS="$ADDR" "$PY" "$LAB_DIR/fake_ofono.py" --state-dir "$S/fakeofono-state" "$@" </dev/null >>"$S/fakeofono.log" 2>&1 &
            echo $! >"$S/pids/fakeofono.pid"
            wait_until 10 has_name org.ofono \
                || die "fakeofono: org.ofono not on the lab bus: $(tail -5 "$S/fakeofono.log")"
            log "fakeofono started in $DUT (pid $(pid_of fakeofono)), log $S/fakeofono.log" ;;
        stop) stop fakeofono ;;
        kill) stop fakeofono KILL ;;
        pid)  running fakeofono || die "fakeofono is not running"; pid_of fakeofono ;;
        ctl)
            local method=${1:-}; shift || true
            [ -n "$method" ] || die "fakeofono ctl: METHOD missing"
            DBUS_SYSTEM_BUS_ADDRESS="$ADDR" "$PY" "$LAB_DIR/fake_ofono.py" ctl "$method" "$@" ;;
        *) die "fakeofono: want start [ARGS...]|stop|kill|pid|ctl METHOD [ARGS...]" ;;
    esac
}

# ------------------------------------------------------------------ LAN clients (tethering)
lan_ns() { echo "pm-$ID-c$1"; }
check_lan_name() { [[ ${1:-} =~ ^[a-z0-9]{1,8}$ ]] || die "bad LAN client name '${1:-}' (1-8 chars [a-z0-9])"; }
lan_exec() {    # NAME CMD...: in the client's netns with private /etc, lease and run dirs
    local name=$1; shift
    local d=$S/c$name
    mkdir -p "$d/etc/upper" "$d/etc/work"
    exec ip netns exec "$(lan_ns "$name")" unshare --mount --uts -- bash -c "set -e
        mount -t overlay pm-lab-etc -o 'lowerdir=/etc,upperdir=$d/etc/upper,workdir=$d/etc/work' /etc
        for m in /var/lib/dhcp /var/lib/dhcpcd /run/dhcpcd; do mkdir -p \$m '$d'/mnt\$m; mount --bind '$d'/mnt\$m \$m; done
        hostname $name
        exec setpriv --bounding-set -sys_time -- \"\$@\"" lan-exec "$@"
}
cmd_lan() {
    need_lab
    local sub=${1:-}; shift || true
    case "$sub" in
        add)
            check_lan_name "${1:-}"; local name=$1 mac=${2:-}
            local ns; ns=$(lan_ns "$name")
            if ns_exists "$ns"; then die "LAN client $name exists"; fi
            if [ -z "$mac" ]; then
                local n; n=$(find "$S" -maxdepth 1 -name 'c*' -type d | wc -l)
                mac=$(printf '02:50:4d:20:00:%02x' $((n + 1)))
            fi
            mkdir -p "$S/c$name"
            echo "$name" >>"$S/lanports"
            ip netns add "$ns"
            ip link add "$name" netns "$DUT" type veth peer name eth0 netns "$ns"
            ip -n "$ns" link set eth0 address "$mac"
            ip -n "$ns" link set lo up
            ip -n "$ns" link set eth0 up
            # The lab's DHCP traffic has no checksum offload surprises on either side.
            ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null 2>&1 || true
            ip netns exec "$DUT" ethtool -K "$name" tx off >/dev/null 2>&1 || true
            log "LAN client $name ($mac) on DUT port $name" ;;
        exec)
            check_lan_name "${1:-}"; local name=$1; shift
            ns_exists "$(lan_ns "$name")" || die "no LAN client $name"
            [ $# -ge 1 ] || die "lan exec: command missing"
            (lan_exec "$name" "$@") ;;
        client)
            check_lan_name "${1:-}"; local name=$1 prog=${2:-} act=${3:-}
            ns_exists "$(lan_ns "$name")" || die "no LAN client $name"
            local d=$S/c$name pidname="c$name-$prog"
            # dhclient and dhcpcd run their script with an environment of their own: a
            # wrapper per client carries who logs where.
            local script=$d/script-$prog.sh
            printf '#!/bin/sh\nexport PM_CLIENT=%s PM_LOG=%s\nexec %s "$@"\n' "$prog" "$d/script.log" \
                "$LAB_DIR/dhcp-client-script.sh" >"$script"
            chmod +x "$script"
            local envs=(env)
            case "$prog:$act" in
                *:start) running "$pidname" && die "$pidname is running"
                    local cmd
                    case $prog in
                        udhcpc)   cmd=(busybox udhcpc -f -i eth0 -s "$script" -t 20 -T 1 -A 1) ;;
                        dhclient) cmd=(dhclient -d -4 -v -sf "$script" -lf "$d/dhclient.leases" -pf "$d/dhclient.pid" eth0) ;;
                        *)        cmd=(dhcpcd -B -4 -d -f /dev/null -c "$script" --noipv4ll eth0) ;;
                    esac
                    mkdir -p "$S/pids"
                    (lan_exec "$name" "${envs[@]}" "${cmd[@]}") </dev/null >>"$d/$prog.log" 2>&1 &
                    echo $! >"$S/pids/$pidname.pid" ;;
                # Each client's own way: udhcpc SIGUSR1 renews, SIGUSR2 releases; dhcpcd -n
                # rebinds and -k releases through the running one's control socket (the
                # client's /run/dhcpcd is kept in cNAME/mnt); dhclient -r releases and ends
                # the running client named by its pid file.
                udhcpc:renew)   kill -USR1 "$(pid_of "$pidname")" ;;
                udhcpc:release) kill -USR2 "$(pid_of "$pidname")" ;;
                dhcpcd:renew)   (lan_exec "$name" dhcpcd -4 -n eth0) >>"$d/$prog.log" 2>&1 ;;
                dhcpcd:release) (lan_exec "$name" dhcpcd -4 -k eth0) >>"$d/$prog.log" 2>&1 ;;
                dhclient:renew) die "dhclient renews at T1 only (give the server a short lease)" ;;
                dhclient:release) (lan_exec "$name" "${envs[@]}" dhclient -4 -r -v -sf "$script" \
                        -lf "$d/dhclient.leases" -pf "$d/dhclient.pid" eth0) >>"$d/$prog.log" 2>&1
                    rm -f "$S/pids/$pidname.pid" ;;
                *:stop)         stop "$pidname" ;;
                *:pid)          running "$pidname" || die "$pidname is not running"; pid_of "$pidname" ;;
                *) die "lan client: want NAME udhcpc|dhclient|dhcpcd start|renew|release|stop|pid" ;;
            esac ;;
        *) die "lan: want add NAME [MAC] | exec NAME CMD... | client NAME PROG ACTION" ;;
    esac
}

# ------------------------------------------------------------------ commands in the lab
cmd_exec() {
    need_lab; [ $# -ge 1 ] || die "exec: command missing"
    exec ip netns exec "$DUT" unshare --uts -- setpriv --bounding-set -sys_time -- \
        env DBUS_SYSTEM_BUS_ADDRESS="$ADDR" "$@"
}
cmd_exec_up() {
    need_lab; check_k "${1:-}"; local up; up=$(up_ns "$1"); shift
    [ $# -ge 1 ] || die "exec-up: command missing"
    exec ip netns exec "$up" setpriv --bounding-set -sys_time -- "$@"
}

# sandbox NAME LOG PREP CMD...: run CMD in the DUT netns with private mount + UTS
# namespaces, copy-on-write /etc (upper: $S/etc/upper, pre-seeded with a private
# resolv.conf), PREP (shell, run after the /etc overlay), CAP_SYS_TIME dropped, the lab
# bus. Same PID all the way (ip -> unshare -> bash -> setpriv -> env -> CMD).
sandbox() {
    local name=$1 logf=$2 prep=$3; shift 3
    local inner="set -e; mount -t overlay pm-lab-etc -o 'lowerdir=/etc,upperdir=$S/etc/upper,workdir=$S/etc/work' /etc; $prep"
    inner+=" exec setpriv --bounding-set -sys_time -- env DBUS_SYSTEM_BUS_ADDRESS='$ADDR' RUST_BACKTRACE=1 \"\$@\""
    mkdir -p "$S/pids" "$S/etc/upper" "$S/etc/work"
    [ -e "$S/etc/upper/resolv.conf" ] || echo "# pathman lab $ID: the DUT's private resolv.conf" >"$S/etc/upper/resolv.conf"
    printf '=== %s start %s: %s\n' "$name" "$(date '+%F %T.%3N')" "$*" >>"$logf"
    date +%s%N >"$S/$name.t0"
    ip netns exec "$DUT" unshare --mount --uts --propagation private -- \
        /bin/bash -c "$inner" "pm-lab-$name" "$@" </dev/null >>"$logf" 2>&1 &
    echo $! >"$S/pids/$name.pid"
}

daemon_ctl() {   # NAME ACTION [ARGS...] for pathman and connmand
    local name=$1 action=${2:-}; shift 2 || true
    case "$action" in
        start)
            need_lab
            if running "$name"; then log "$name already running in lab $ID: restarting"; stop "$name"; fi
            if [ "$name" = pathman ]; then start_pathman "$@"; else start_connmand "$@"; fi
            sleep 0.05
            alive "$(pid_of "$name")" || die "$name exited at once: $(tail -5 "$S/$name.log")"
            log "$name started in $DUT (pid $(pid_of "$name")), log $S/$name.log" ;;
        stop) stop "$name" ;;
        kill) stop "$name" KILL ;;
        pid)  running "$name" || die "$name is not running"; pid_of "$name" ;;
        *)    die "daemon/connman: want start|stop|kill|pid" ;;
    esac
}

start_pathman() {
    local bin=${PATHMAN:-$REPO/target/release/pathman}
    [ -x "$bin" ] || die "no pathman binary at $bin (build it, or set PATHMAN)"
    bin=$(readlink -f "$bin")
    mkdir -p "$S/state" "$S/run"
    # PM_STATE_RO=1: the state dir is read-only for pathman (a full or
    # read-only firmware overlay), in its own mount namespace only.
    local prep=""
    if [ "${PM_STATE_RO:-0}" = 1 ]; then
        prep="mount --bind '$S/state' '$S/state'; mount -o remount,bind,ro '$S/state';"
    fi
    sandbox pathman "$S/pathman.log" "$prep" \
        "$bin" daemon --state-dir "$S/state" --run-dir "$S/run" --no-set-clock -i "$(ifnames_csv)" "$@"
}

start_connmand() {
    local c=$S/connman
    command -v connmand >/dev/null || die "connmand is not installed"
    if [ "${CM_KEEP_STATE:-0}" != 1 ] || [ ! -d "$c/varlib" ]; then
        rm -rf "$c/varlib"; mkdir -p "$c/varlib/session_policy_local"
        # 1.41: clock updates are Clock properties kept in settings [global], not main.conf
        # keys; off, so connmand never tries to set the clock (CAP_SYS_TIME is gone anyway).
        # CM_TIME_UPDATES=auto (benchmarks) lets it run SNTP; it still cannot set the clock.
        printf '[global]\nTimeUpdates=%s\nTimezoneUpdates=manual\nOfflineMode=false\n' \
            "${CM_TIME_UPDATES:-manual}" >"$c/varlib/settings"
    fi
    [ -f "$c/main.conf" ] || {
        printf '[General]\nAllowHostnameUpdates=false\nAllowDomainnameUpdates=false\n'
        printf 'FallbackTimeservers=\nUseGatewaysAsTimeservers=false\nEnableOnlineCheck=true\n'
    } >"$c/main.conf"
    # private /run and /var/lib (tmpfs) with connman's dirs, /var/lib/connman = $c/varlib
    local prep="mount -t tmpfs -o mode=0755 pm-lab-run /run; mount -t tmpfs -o mode=0755 pm-lab-varlib /var/lib;"
    prep+=" mkdir -p /run/connman /var/lib/connman /var/lib/connman-vpn; mount --bind '$c/varlib' /var/lib/connman;"
    sandbox connmand "$S/connmand.log" "$prep" connmand -n -r -c "$c/main.conf" -i "$(ifnames_csv)" "$@"
}

cmd_reset() {
    need_lab
    if running pathman || running connmand; then die "reset: stop the daemon first"; fi
    local ifn
    while read -r ifn; do
        ip -n "$DUT" addr flush dev "$ifn" 2>/dev/null || true
        ip -n "$DUT" link set "$ifn" down
    done <"$S/ifnames"
    ip -n "$DUT" -4 route flush table all 2>/dev/null || true
    ip -n "$DUT" -6 route flush table all 2>/dev/null || true
    ip -n "$DUT" link set lo down; ip -n "$DUT" link set lo up    # restores lo's local routes
    local fam prio
    for fam in -4 -6; do
        for prio in $(ip -n "$DUT" "$fam" rule show | awk -F: '{print $1}' | grep -vxE '0|32766|32767' || true); do
            ip -n "$DUT" "$fam" rule del priority "$prio" 2>/dev/null || true
        done
    done
    ip netns exec "$DUT" nft flush ruleset 2>/dev/null || true
    ip -n "$DUT" mptcp endpoint flush 2>/dev/null || true
    rm -rf "${S:?}/state" "${S:?}/run" "${S:?}/connman/varlib" "${S:?}/etc"
    mkdir -p "$S/state" "$S/run" "$S/etc/upper" "$S/etc/work"
    echo "# pathman lab $ID: the DUT's private resolv.conf" >"$S/etc/upper/resolv.conf"
}

cmd_resolv() { if [ -f "$S/run/resolv.conf" ]; then cat "$S/run/resolv.conf"; else cat "$S/etc/upper/resolv.conf"; fi; }

cmd_info() {
    need_lab
    echo "lab $ID: state $S, bus $ADDR"
    echo "namespaces: $(lab_nss | xargs)"
    local k; for ((k = 1; k <= $(lab_n); k++)); do
        echo "upstream $k: $(up_ns $k) down0 198.18.$k.1/24 <-> $DUT $(ifname_of $k)"
    done
    for f in "$S"/pids/*.pid; do [ -e "$f" ] && echo "pid $(basename "$f" .pid) $(cat "$f")"; done
    return 0
}

cmd_list() {
    { ls "$ROOT" 2>/dev/null || true; ip netns list 2>/dev/null | awk '{print $1}' | sed -nE 's/^pm-([A-Za-z0-9]+)-(dut|inet|up[0-9]+)$/\1/p'; } | sort -u
}

cmd_gc() {
    local id owner
    for id in $(cmd_list); do
        owner=$(cat "$ROOT/$id/owner" 2>/dev/null || echo 0)
        if [ "$owner" = 0 ] || ! alive "$owner"; then
            log "gc: tearing down lab $id (owner $owner gone)"
            (set_id "$id"; cmd_down) || true
        fi
    done
}

# ------------------------------------------------------------------ main
[ $# -ge 1 ] || usage
CMD=$1; shift
case "$CMD" in -h|--help|help) usage 0 ;; esac
[ "$(id -u)" = 0 ] || die "must run as root"
case "$CMD" in
    list) cmd_list; exit 0 ;;
    gc)   cmd_gc; exit 0 ;;
esac
set_id "${1:-}"; shift
case "$CMD" in
    up)        cmd_up "$@" ;;
    down)      cmd_down "$@" ;;
    link)      cmd_link "$@" ;;
    dhcp)      cmd_dhcp "$@" ;;
    http)      cmd_http "$@" ;;
    dnsmasq-conf) cmd_dnsmasq_conf "$@" ;;
    standin)   cmd_standin "$@" ;;
    ntp)       cmd_ntp "$@" ;;
    bus)       cmd_bus "$@" ;;
    exec)      cmd_exec "$@" ;;
    exec-up)   cmd_exec_up "$@" ;;
    daemon)    daemon_ctl pathman "$@" ;;
    connman)   daemon_ctl connmand "$@" ;;
    reset)     cmd_reset ;;
    wpa)       cmd_wpa "$@" ;;
    ofono)     cmd_ofono "$@" ;;
    fakeofono) cmd_fakeofono "$@" ;;
    lan)       cmd_lan "$@" ;;
    wait-name) cmd_wait_name "$@" ;;
    resolv)    cmd_resolv ;;
    info)      cmd_info ;;
    ifname)    need_lab; check_k "${1:-}"; ifname_of "$1" ;;
    ns)        case "${1:-}" in dut) echo "$DUT" ;; inet) echo "$INET" ;; *) up_ns "${1:?}" ;; esac ;;
    dir)       echo "$S" ;;
    *)         usage ;;
esac
