#!/usr/bin/python3
"""tests/vm/wpas.py - drive wpa_supplicant's D-Bus API (fi.w1.wpa_supplicant1) from a VM-tier
guest script, on the bus of DBUS_SYSTEM_BUS_ADDRESS (guest-lib.sh start_private_bus).
Prints key=value lines, each key prefixed with its command (for result.txt: create_path=,
scan_bss_count=, connect_state=, ...); exits 1 when the expected outcome is not reached.
Several commands run in one process when separated by "+" (python3 and dbus start slowly
under TCG): wpas.py create wlan0 + scan wlan0 --expect a,b + connect wlan0 --ssid a --psk x

  wpas.py create IFACE                     CreateInterface (or GetInterface): path=...
  wpas.py scan IFACE [--expect S1,S2] [--freqs F1,F2] [--timeout S]
                                           active scans (of the frequencies F in MHz, default
                                           all) until every expected SSID is seen;
                                           bss_count=, ssids=, hidden_bss=, one bss= per BSS
  wpas.py connect IFACE --ssid S [--psk P] [--key-mgmt K] [--ieee80211w N] [--scan-ssid]
                  [--timeout S]            AddNetwork + SelectNetwork, waits for completed:
                                           state=, connect_seconds=, bssid=
  wpas.py state IFACE                      state=
"""
import argparse
import sys
import time

import dbus

SVC = "fi.w1.wpa_supplicant1"
PATH = "/fi/w1/wpa_supplicant1"
IFACE = SVC + ".Interface"
PROPS = "org.freedesktop.DBus.Properties"


def bus():
    return dbus.SystemBus()


def interface(b, ifname, create=True):
    root = dbus.Interface(b.get_object(SVC, PATH), SVC)
    try:
        return root.GetInterface(ifname)
    except dbus.DBusException:
        if not create:
            raise
    return root.CreateInterface({"Ifname": ifname, "Driver": "nl80211"})


def prop(b, path, iface, name):
    return b.get_object(SVC, path).Get(iface, name, dbus_interface=PROPS)


def ssid_str(raw):
    return bytes(bytearray(raw)).decode("utf-8", "replace")


def mac(raw):
    return ":".join("%02x" % int(x) for x in raw)


def bss_list(b, ipath):
    out = []
    for p in prop(b, ipath, IFACE, "BSSs"):
        try:
            o = b.get_object(SVC, p)
            a = o.GetAll(SVC + ".BSS", dbus_interface=PROPS)
        except dbus.DBusException:
            continue  # expired between the two calls
        km = sorted(set(str(k) for k in a["RSN"].get("KeyMgmt", [])) | set(str(k) for k in a["WPA"].get("KeyMgmt", [])))
        out.append({
            "ssid": ssid_str(a["SSID"]), "bssid": mac(a["BSSID"]), "freq": int(a["Frequency"]),
            "signal": int(a["Signal"]), "privacy": bool(a["Privacy"]), "keymgmt": "+".join(km) or "none",
        })
    return out


def cmd_create(a):
    b = bus()
    print("path=%s" % interface(b, a.iface))
    return 0


def cmd_scan(a):
    b = bus()
    ipath = interface(b, a.iface)
    want = set(s for s in (a.expect or "").split(",") if s)
    end = time.monotonic() + a.timeout
    itf = dbus.Interface(b.get_object(SVC, ipath), IFACE)
    scans = 0
    args = {"Type": "active"}
    if a.freqs:
        args["Channels"] = dbus.Array([dbus.Struct((dbus.UInt32(int(f)), dbus.UInt32(20)))
                                       for f in a.freqs.split(",")], signature="(uu)")
    while True:
        try:
            itf.Scan(dbus.Dictionary(args, signature="sv"))
            scans += 1
        except dbus.DBusException as e:  # a scan is already running: wait for it
            if "ScanError" not in e.get_dbus_name():
                raise
        time.sleep(0.2)
        while prop(b, ipath, IFACE, "Scanning") and time.monotonic() < end:
            time.sleep(0.1)
        bsss = bss_list(b, ipath)
        seen = set(x["ssid"] for x in bsss if x["ssid"])
        if want <= seen or time.monotonic() >= end:
            break
    print("scans=%d" % scans)
    print("bss_count=%d" % len(bsss))
    print("ssids=%s" % ",".join(sorted(seen)))
    print("hidden_bss=%d" % sum(1 for x in bsss if not x["ssid"].strip("\0")))
    for x in sorted(bsss, key=lambda x: x["bssid"]):
        print("bss=%(bssid)s,%(freq)d,%(signal)d,%(keymgmt)s,%(ssid)s" % x)
    missing = want - seen
    if missing:
        print("missing_ssids=%s" % ",".join(sorted(missing)))
        return 1
    return 0


def cmd_connect(a):
    b = bus()
    ipath = interface(b, a.iface)
    itf = dbus.Interface(b.get_object(SVC, ipath), IFACE)
    net = {"ssid": a.ssid}
    if a.psk is not None:
        net["psk"] = a.psk
        net["key_mgmt"] = a.key_mgmt or "WPA-PSK"
    else:
        net["key_mgmt"] = a.key_mgmt or "NONE"
    if a.ieee80211w is not None:
        net["ieee80211w"] = dbus.UInt32(a.ieee80211w)
    if a.scan_ssid:
        net["scan_ssid"] = dbus.UInt32(1)
    npath = itf.AddNetwork(dbus.Dictionary(net, signature="sv"))
    t0 = time.monotonic()
    itf.SelectNetwork(npath)
    end = t0 + a.timeout
    states = []
    state = ""
    while time.monotonic() < end:
        state = str(prop(b, ipath, IFACE, "State"))
        if not states or states[-1] != state:
            states.append(state)
        if state == "completed":
            break
        time.sleep(0.05)
    took = time.monotonic() - t0
    print("network=%s" % npath)
    print("state=%s" % state)
    print("states=%s" % ",".join(states))
    print("connect_seconds=%.2f" % took)
    if state == "completed":
        cur = prop(b, ipath, IFACE, "CurrentBSS")
        print("bssid=%s" % mac(prop(b, cur, SVC + ".BSS", "BSSID")))
        print("auth_mode=%s" % prop(b, ipath, IFACE, "CurrentAuthMode"))
        return 0
    return 1


def cmd_state(a):
    print("state=%s" % prop(bus(), interface(bus(), a.iface, create=False), IFACE, "State"))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create"); c.add_argument("iface"); c.set_defaults(fn=cmd_create)
    s = sub.add_parser("scan"); s.add_argument("iface"); s.add_argument("--expect"); s.add_argument("--freqs")
    s.add_argument("--timeout", type=float, default=30); s.set_defaults(fn=cmd_scan)
    n = sub.add_parser("connect"); n.add_argument("iface"); n.add_argument("--ssid", required=True)
    n.add_argument("--psk"); n.add_argument("--key-mgmt"); n.add_argument("--ieee80211w", type=int)
    n.add_argument("--scan-ssid", action="store_true")
    n.add_argument("--timeout", type=float, default=30); n.set_defaults(fn=cmd_connect)
    t = sub.add_parser("state"); t.add_argument("iface"); t.set_defaults(fn=cmd_state)
    argv, rc = sys.argv[1:], 0
    while argv and rc == 0:
        cut = argv.index("+") if "+" in argv else len(argv)
        a = p.parse_args(argv[:cut])
        argv = argv[cut + 1:]
        real = sys.stdout
        sys.stdout = Prefixed(real, a.cmd + "_")
        try:
            rc = a.fn(a)
        finally:
            sys.stdout.flush()
            sys.stdout = real
    sys.exit(rc)


class Prefixed:
    """stdout that prefixes every line with the command's name."""

    def __init__(self, out, prefix):
        self.out, self.prefix, self.buf = out, prefix, ""

    def write(self, s):
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self.out.write(self.prefix + line + "\n")

    def flush(self):
        if self.buf:
            self.out.write(self.prefix + self.buf + "\n")
            self.buf = ""
        self.out.flush()


if __name__ == "__main__":
    main()
