#!/bin/bash
# tests/lab/install-deps.sh - installs, on a fresh Debian machine, what the lab, the tests,
# the demo and the benchmarks need (dnsmasq, dbus, nftables, iproute2, chrony, iperf3,
# mptcpd, tcpdump, connman for connmanctl and the side-by-side benchmark, python3, make and
# systemd-analyze for the packaging checks, qemu-system-x86 + busybox-static + kmod + hostapd +
# wpasupplicant + iw + wireless-regdb + cpio for the VM tier (tests/vm/), ethtool for its WiFi
# benchmark (veth checksums, tests/vm/bench-wifi.sh), ofono for the simulated cellular modem
# (ofonod's built-in phonesim plugin + tests/lab/at_modem.py), isc-dhcp-client and
# dhcpcd-base (with busybox's udhcpc, the tethering tests' three real DHCP clients); wpa_supplicant also
# checks the lab's fake wpa_supplicant against the real one (-Dwired), ...).
# Installing never starts those services on this machine. Needs root.
#   --check   only report what is missing (exit 1 if anything is)
set -euo pipefail
CHECK=0; [ "${1:-}" = "--check" ] && CHECK=1
say() { printf '\n=== %s\n' "$*"; }
PKGS=(dnsmasq dbus nftables iproute2 chrony iperf3 mptcpize tcpdump connman python3 procps util-linux
      python3-dbus python3-gi gir1.2-glib-2.0 curl iputils-ping file make systemd dpkg
      git qemu-user-static
      qemu-system-x86 busybox-static kmod hostapd wpasupplicant iw wireless-regdb cpio gzip ethtool ofono
      isc-dhcp-client dhcpcd-base)
TOOLS=(dnsmasq dbus-daemon dbus-send busctl nft ip tc ss chronyd iperf3 mptcpize tcpdump connmand python3 ps setpriv unshare
       curl ping file make systemd-analyze start-stop-daemon
       git qemu-aarch64-static
       qemu-system-x86_64 busybox modprobe depmod hostapd wpa_supplicant iw cpio gzip ethtool ofonod
       dhclient dhcpcd)
missing_tools() {
    local t
    for t in "${TOOLS[@]}"; do
        command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || [ -x "/sbin/$t" ] || echo "$t"
    done
    # The ConnMan-compatibility tests drive pathman from dbus-python with GLib,
    # as ConnMan's own test scripts do (Debian's python3, not a pyenv one).
    /usr/bin/python3 -c 'import dbus, dbus.mainloop.glib; from gi.repository import GLib' 2>/dev/null \
        || echo "python3-dbus/python3-gi"
}
if [ -n "$(missing_tools)" ]; then
    if [ $CHECK = 1 ]; then
        echo "run.sh: missing tools: $(missing_tools | xargs) (run without --no-install / --check)" >&2; exit 1
    fi
    say "installing: ${PKGS[*]} (missing: $(missing_tools | xargs))"
    command -v apt-get >/dev/null || { echo "run.sh: no apt-get; install ${PKGS[*]} by hand" >&2; exit 1; }
    # Installing connman/dnsmasq/chrony must not start their services on this machine.
    ADDED_POLICY=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# added by pathman tests/run.sh for the duration of apt-get install\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        ADDED_POLICY=/usr/sbin/policy-rc.d
    fi
    remove_policy() { if [ -n "$ADDED_POLICY" ]; then rm -f "$ADDED_POLICY"; fi; }
    trap remove_policy EXIT
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PKGS[@]}"
    remove_policy; trap - EXIT
    if [ -n "$(missing_tools)" ]; then
        echo "run.sh: still missing after install: $(missing_tools | xargs)" >&2; exit 1
    fi
fi

