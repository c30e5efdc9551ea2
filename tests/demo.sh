#!/bin/bash
# tests/demo.sh - README's first command: pathman managing three uplinks in a
# network-namespace lab (nothing on the host is touched). Needs root: re-executes itself
# with sudo when not root, and finds a rustup cargo that root's PATH lacks.
#
#   builds the release binary (skip with --no-build; PATHMAN=path uses another binary),
#   makes a lab with 3 upstreams (+ an "internet" server; chronyd as the NTP server),
#   starts the lab's D-Bus system bus and `pathman daemon` in the lab's DUT namespace,
#   waits until 3 services are ready (and up to 10 s more until they are online), shows
#   `pathman ctl services`, `pathman ctl clock`, the DUT's addresses, rules, routes and
#   the resolv.conf pathman wrote, then tears everything down.
# Options: --no-build, --keep (leave the lab running; prints how to remove it), -- ARGS
# (daemon arguments instead of the default --mpathrouting).
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LAB=$HERE/lab/lab.sh
# shellcheck source=tests/root-cargo.sh
. "$HERE/root-cargo.sh"
ARGS=("$@")
BUILD=1; KEEP=0; DARGS=(--mpathrouting)
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --keep)     KEEP=1 ;;
        --)         shift; DARGS=("$@"); break ;;
        -h|--help)  sed -n '2,12p' "$0"; exit 0 ;;
        *)          echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
pm_need_root "$0" "${ARGS[@]+"${ARGS[@]}"}"

"$HERE/lab/install-deps.sh"

export PATHMAN=${PATHMAN:-$REPO/target/release/pathman}
if [ $BUILD = 1 ]; then
    pm_find_cargo || { echo "demo.sh: cargo not found on PATH, in \$CARGO_HOME/bin, ~/.cargo/bin or /root/.cargo/bin (install Rust with rustup, or use --no-build with PATHMAN=...)" >&2; exit 1; }
    (cd "$REPO" && cargo build --release)
fi
[ -x "$PATHMAN" ] || { echo "demo.sh: no binary at $PATHMAN" >&2; exit 1; }

ID=demo$$
N=3
cleanup() {
    if [ $KEEP = 1 ]; then
        echo; echo "lab $ID kept; remove it with: $LAB down $ID"
    else
        "$LAB" down "$ID" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$LAB" exec "$ID" "$@"; }

"$LAB" up "$ID" $N --inet --ntp
"$LAB" bus "$ID" start >/dev/null
t0=$(date +%s%N)
"$LAB" daemon "$ID" start "${DARGS[@]}"

# services in state ready/online: flags '*AMR' (pathman) or '*AR' (connmanctl layout)
ready() { "$LAB" exec "$ID" "$PATHMAN" ctl services 2>/dev/null | grep -cE '^[* ]?[A ]?[M ]?[RO] ' || true; }
echo "waiting for $N services to be ready..."
until [ "$(ready)" -ge $N ]; do
    if [ $(( ($(date +%s%N) - t0) / 1000000000 )) -ge 30 ]; then
        echo "demo.sh: $N services not ready after 30 s; daemon log:" >&2
        tail -40 "$("$LAB" dir "$ID")/pathman.log" >&2 || true
        exit 1
    fi
    sleep 0.1
done
echo "all $N services ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# IPv6 (SLAAC) takes a router advertisement: wait (up to 10 s) for a global address on
# every uplink and, with multipath routing, for pathman's IPv6 rules and both families'
# MPTCP endpoints, so the listings below show what pathman set up for both families.
mpath=0; for a in "${DARGS[@]}"; do case "$a" in -M|--mpathrouting) mpath=1 ;; esac; done
count() { "$LAB" exec "$ID" "$@" 2>/dev/null | wc -l; }
online() { "$LAB" exec "$ID" "$PATHMAN" ctl services 2>/dev/null | grep -cE '^[* ]?[A ]?[M ]?O ' || true; }
settled() {
    [ "$(count ip -6 -o addr show scope global)" -ge $N ] || return 1
    # The online check (HTTP to the lab's internet server) takes each uplink to online.
    [ "$(online)" -ge $N ] || return 1
    [ $mpath = 0 ] && return 0
    [ "$("$LAB" exec "$ID" ip -6 rule 2>/dev/null | grep -c 'proto 196')" -ge $N ] \
        && [ "$(count ip mptcp endpoint show)" -ge $((2 * N)) ]
}
end=$(( $(date +%s) + 10 ))
until settled || [ "$(date +%s)" -ge $end ]; do sleep 0.2; done
show "$PATHMAN" ctl services
show "$PATHMAN" ctl clock
show ip -br addr
show ip rule
show ip -6 rule
show ip route
for k in $(seq "$N"); do
    ifn=$("$LAB" ifname "$ID" "$k")
    # Each uplink's own table: 255 + its ifindex, IPv4 and IPv6.
    t=$((255 + $("$LAB" exec "$ID" cat "/sys/class/net/$ifn/ifindex")))
    show ip route show table $t
    show ip -6 route show table $t
done
show ip mptcp endpoint show
show ip mptcp limits show
printf '\n\033[1m$ cat <run-dir>/resolv.conf   # written by pathman\033[0m\n'
cat "$("$LAB" dir "$ID")/run/resolv.conf"
