#!/usr/bin/python3
"""tests/lab/wpa_trace.py - a D-Bus client of fi.w1.wpa_supplicant1 that runs a named scenario
against whatever owns the name (tests/lab/fake_wpa_supplicant.py, the real wpa_supplicant -u
with -Dwired here, or on hwsim radios in the VM tier) and prints a normalised trace, one event
a line, in wire order, so two supplicants can be diffed:

  call MEMBER                         a method call sent
  reply MEMBER SIG                    its reply's signature ("-" = empty)
  error MEMBER ERRNAME                its error
  signal IFACE.MEMBER ARGS            a signal (object paths as IF0/NET0/BSS0 by first use,
                                      property dicts as their sorted keys, State's value)

Usage (DBUS_SYSTEM_BUS_ADDRESS = the lab bus; lab.sh exec sets it):
  wpa_trace.py run SCENARIO --ifname IF [--driver D] [--ssid S] [--psk P] [--json]
      scenarios: wired-open (CreateInterface, AddNetwork key_mgmt NONE, SelectNetwork,
      completed, Disconnect, RemoveNetwork, RemoveInterface), errors (bad calls and their
      error names), scan (active Scan, ScanDone, BSSs), connect-psk / connect-open
      (scan, AddNetwork, SelectNetwork until completed or disconnected; radios only)
  wpa_trace.py ctl METHOD [JSON-ARG...]   call the fake's net.pathman.test.FakeSupplicant
      METHOD; args typed by its signature; prints the reply as JSON
Exit status 0 on success; 2 if a scenario's wait timed out (the trace is still printed).
"""
import argparse
import json
import os
import re
import sys

import dbus
import dbus.lowlevel
import dbus.mainloop.glib
from gi.repository import GLib

SVC = "fi.w1.wpa_supplicant1"
ROOT = "/fi/w1/wpa_supplicant1"
IFACE = SVC + ".Interface"
PROPS = dbus.PROPERTIES_IFACE
CTL = "net.pathman.test.FakeSupplicant"
CTL_SIGS = {"AddBss": "sa{sv}", "RemoveBss": "o", "SetSignal": "on", "Roam": "so",
            "FailNext": "ssi", "Crash": "", "Trace": "", "ClearTrace": "", "SetStepDelay": "u"}


def plain(v):
    """D-Bus value -> JSON-able python value (bytes as hex)."""
    if isinstance(v, (dbus.ByteArray, bytes)):
        return bytes(v).hex()
    if isinstance(v, dbus.Array) and v.signature == "y":
        return bytes(int(b) for b in v).hex()
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (int,)):
        return int(v)
    return str(v)


def typed(sig, v):
    """JSON value -> D-Bus value for a one-type signature."""
    if sig == "s":
        return dbus.String(v)
    if sig == "o":
        return dbus.ObjectPath(v)
    if sig == "n":
        return dbus.Int16(int(v))
    if sig == "i":
        return dbus.Int32(int(v))
    if sig == "u":
        return dbus.UInt32(int(v))
    if sig == "a{sv}":
        d = {}
        for k, x in (json.loads(v) if isinstance(v, str) else v).items():
            if k == "ssid":
                d[k] = dbus.ByteArray(x.encode("utf-8", "surrogateescape"))
            elif k == "signal":
                d[k] = dbus.Int16(x)
            elif k == "frequency":
                d[k] = dbus.UInt16(x)
            elif isinstance(x, bool):
                d[k] = dbus.Boolean(x)
            else:
                d[k] = dbus.String(x)
        return dbus.Dictionary(d, signature="sv")
    raise ValueError(sig)


def split_sig(sig):
    out, i = [], 0
    while i < len(sig):
        if sig.startswith("a{sv}", i):
            out.append("a{sv}")
            i += 5
        else:
            out.append(sig[i])
            i += 1
    return out


class Tracer:
    def __init__(self, bus):
        self.bus = bus
        self.loop = GLib.MainLoop()
        self.lines = []
        self.names = {}
        self.state = None
        self.scan_done = 0
        self.scanning = None
        self.waiting = None
        self.timed_out = False
        self.messages = False
        bus.add_signal_receiver(self.on_signal, bus_name=SVC, byte_arrays=True,
                                interface_keyword="iface", member_keyword="member",
                                path_keyword="path")

    def norm_path(self, p):
        p = str(p)
        m = re.fullmatch(r"/fi/w1/wpa_supplicant1/Interfaces/(\d+)(?:/(Networks|BSSs)/(\d+))?", p)
        if not m:
            return p
        key = p
        if key not in self.names:
            kind = {"Networks": "NET", "BSSs": "BSS", None: "IF"}[m.group(2)]
            n = sum(1 for v in self.names.values() if v.startswith(kind))
            self.names[key] = "%s%d" % (kind, n)
        return self.names[key]

    def norm(self, v):
        if isinstance(v, dbus.ObjectPath):
            return self.norm_path(v)
        if isinstance(v, dict):
            keys = sorted(str(k) for k in v)
            extra = ""
            if "State" in v:
                extra = " State=" + str(v["State"])
            return "{" + ",".join(keys) + "}" + extra
        if isinstance(v, (dbus.ByteArray, bytes)):
            return "ay"
        if isinstance(v, list):
            return "[" + ",".join(self.norm(x) for x in v) + "]"
        return str(v)

    def on_signal(self, *args, iface=None, member=None, path=None):
        if member == "PropertiesChanged" and iface == PROPS:
            shown = [str(args[0]), self.norm(args[1])]
            props = args[1]
        else:
            shown = [self.norm(a) for a in args]
            props = args[0] if member == "PropertiesChanged" and args else {}
        self.lines.append("signal %s.%s %s %s" % (iface, member, self.norm_path(path), " ".join(shown)))
        if iface == IFACE and member == "PropertiesChanged" and "State" in props:
            self.state = str(props["State"])
        if iface == IFACE and member == "ScanDone":
            self.scan_done += 1
        if iface == IFACE and member == "PropertiesChanged" and "Scanning" in props:
            self.scanning = bool(props["Scanning"])
        self.check_wait()

    def check_wait(self):
        if self.waiting is not None and self.waiting():
            self.waiting = None
            self.loop.quit()

    def wait(self, cond, timeout=10):
        if cond():
            return True
        self.waiting = cond
        fired = []

        def on_timeout():
            fired.append(1)
            self.loop.quit()
            return False
        src = GLib.timeout_add(int(timeout * 1000), on_timeout)
        self.loop.run()
        if not fired:
            GLib.source_remove(src)
        self.waiting = None
        if not cond():
            self.lines.append("timeout")
            self.timed_out = True
            return False
        return True

    def call(self, path, iface, member, sig="", *args, log=True):
        """Call and wait for the answer; events stay in wire order. Returns (ok, value)."""
        m = dbus.lowlevel.MethodCallMessage(SVC, path, iface, member)
        if sig:
            m.append(*args, signature=sig)
        res = {}

        def got(reply):
            res["m"] = reply
            self.loop.quit()
        if log:
            self.lines.append("call %s" % member)
        self.bus.send_message_with_reply(m, got, 10)
        self.loop.run()
        r = res.get("m")
        if isinstance(r, dbus.lowlevel.ErrorMessage):
            if log:
                self.lines.append("error %s %s" % (member, r.get_error_name()))
                if self.messages:
                    self.lines.append("  message %r" % (r.get_args_list() or [""])[0])
            return False, r.get_error_name()
        vals = r.get_args_list(byte_arrays=True)
        if log:
            self.lines.append("reply %s %s" % (member, r.get_signature() or "-"))
        return True, (vals[0] if len(vals) == 1 else vals)


def get_or_create(t, ifname, driver):
    ok, p = t.call(ROOT, SVC, "CreateInterface", "a{sv}",
                   {"Ifname": ifname, "Driver": driver})
    if not ok and p == SVC + ".InterfaceExists":
        ok, p = t.call(ROOT, SVC, "GetInterface", "s", ifname)
    if not ok:
        raise SystemExit("cannot get interface %s: %s" % (ifname, p))
    # a new interface starts inactive and turns disconnected at once: wait for that, so the
    # trace does not depend on how fast the next call is
    t.wait(lambda: t.state is not None, 5)
    return p


def scenario_wired_open(t, a):
    ifp = get_or_create(t, a.ifname, a.driver)
    t.call(ROOT, SVC, "GetInterface", "s", a.ifname)
    ok, st = t.call(ifp, PROPS, "Get", "ss", IFACE, "State")
    t.lines.append("state-at-create %s" % st)
    ok, net = t.call(ifp, IFACE, "AddNetwork", "a{sv}",
                     dbus.Dictionary({"ssid": dbus.ByteArray(b"lab"), "key_mgmt": "NONE"},
                                     signature="sv"))
    t.call(ifp, IFACE, "SelectNetwork", "o", net)
    t.wait(lambda: t.state == "completed")
    values(t, ifp, "CurrentBSS", "CurrentNetwork", "CurrentAuthMode", "ApScan")
    t.call(ifp, IFACE, "Disconnect")
    t.wait(lambda: t.state == "disconnected")
    values(t, ifp, "CurrentBSS", "CurrentNetwork", "CurrentAuthMode", "DisconnectReason")
    t.call(ifp, IFACE, "Disconnect")
    t.call(ifp, IFACE, "Reconnect")
    t.wait(lambda: t.state == "completed")
    t.state = None
    t.call(ifp, IFACE, "Reassociate")
    t.wait(lambda: t.state == "completed", 3)
    t.call(ifp, IFACE, "RemoveAllNetworks")
    t.wait(lambda: t.state == "disconnected")
    values(t, ifp, "CurrentNetwork", "DisconnectReason", "Networks")
    ok, net = t.call(ifp, IFACE, "AddNetwork", "a{sv}",
                     dbus.Dictionary({"ssid": dbus.ByteArray(b"lab"), "key_mgmt": "NONE"},
                                     signature="sv"))
    t.call(ifp, IFACE, "RemoveNetwork", "o", net)
    t.call(ROOT, SVC, "RemoveInterface", "o", ifp)
    t.wait(lambda: any("InterfaceRemoved" in x for x in t.lines), 5)


def values(t, ifp, *props):
    """value lines: Interface properties read without logging the calls."""
    for p in props:
        ok, v = t.call(ifp, PROPS, "Get", "ss", IFACE, p, log=False)
        t.lines.append("value %s %s" % (p, t.norm(v) if ok else "error " + v))


def scenario_errors(t, a):
    t.call(ROOT, SVC, "GetInterface", "s", "nosuchif0")
    t.call(ROOT, SVC, "CreateInterface", "a{sv}", dbus.Dictionary({}, signature="sv"))
    t.call(ROOT, SVC, "CreateInterface", "a{sv}", {"Ifname": "nosuchif0", "Driver": a.driver})
    t.call(ROOT, SVC, "CreateInterface", "s", "bad-type")
    t.call(ROOT, SVC, "CreateInterface", "a{sv}", {"Ifname": dbus.UInt32(3)})
    t.call(ROOT, SVC, "RemoveInterface", "o", dbus.ObjectPath(ROOT + "/Interfaces/999"))
    t.call(ROOT, PROPS, "Get", "ss", SVC, "NoSuchProperty")
    t.call(ROOT, PROPS, "Set", "ssv", SVC, "Interfaces", dbus.Array([], signature="o"))
    t.call(ROOT, PROPS, "Set", "ssv", SVC, "DebugLevel", dbus.UInt32(3))
    ifp = get_or_create(t, a.ifname, a.driver)
    t.call(ROOT, SVC, "CreateInterface", "a{sv}", {"Ifname": a.ifname, "Driver": a.driver})
    t.call(ifp, IFACE, "Disconnect")
    t.call(ifp, IFACE, "SignalPoll")
    t.call(ifp, IFACE, "Reattach")
    t.call(ifp, IFACE, "Reconnect")
    t.call(ifp, IFACE, "RemoveNetwork", "o", dbus.ObjectPath(ifp + "/Networks/77"))
    t.call(ifp, IFACE, "SelectNetwork", "o", dbus.ObjectPath(ifp + "/Networks/77"))
    t.call(ifp, IFACE, "RemoveNetwork", "o", dbus.ObjectPath("/no/such/path"))
    t.call(ifp, IFACE, "AddNetwork", "a{sv}", dbus.Dictionary({"psk": "1234567"}, signature="sv"))
    t.call(ifp, IFACE, "AddNetwork", "a{sv}", dbus.Dictionary({"nosuchkey": "x"}, signature="sv"))
    t.call(ifp, IFACE, "AddNetwork", "a{sv}", dbus.Dictionary({"ssid": dbus.Byte(1)}, signature="sv"))
    t.call(ifp, IFACE, "AddNetwork", "s", "bad-type")
    t.call(ifp, IFACE, "Scan", "a{sv}", dbus.Dictionary({}, signature="sv"))
    t.call(ifp, IFACE, "Scan", "a{sv}", dbus.Dictionary({"Type": "bogus"}, signature="sv"))
    t.call(ifp, PROPS, "Get", "ss", IFACE, "NoSuchProperty")
    t.call(ifp, PROPS, "Set", "ssv", IFACE, "State", "completed")
    t.call(ifp, PROPS, "Set", "ssv", IFACE, "ApScan", "x")
    for prop, sig in [("State", "s"), ("Scanning", "b"), ("ApScan", "u"), ("BSSs", "ao"),
                      ("Networks", "ao"), ("CurrentBSS", "o"), ("CurrentNetwork", "o"),
                      ("CurrentAuthMode", "s"), ("Ifname", "s"), ("Driver", "s"),
                      ("DisconnectReason", "i"), ("AssocStatusCode", "i"),
                      ("AuthStatusCode", "i"), ("Capabilities", "a{sv}")]:
        m = dbus.lowlevel.MethodCallMessage(SVC, ifp, PROPS, "Get")
        m.append(IFACE, prop, signature="ss")
        r = t.bus.send_message_with_reply_and_block(m, 10)
        t.lines.append("prop %s %s" % (prop, variant_sig(r)))
    t.call(ROOT, SVC, "RemoveInterface", "o", ifp)


def variant_sig(reply):
    """The signature inside the one variant of a Properties.Get reply."""
    v = reply.get_args_list(byte_arrays=True)[0]
    return guess_sig(v)


def guess_sig(v):
    if isinstance(v, dbus.Boolean):
        return "b"
    for typ, s in ((dbus.Int16, "n"), (dbus.UInt16, "q"), (dbus.Int32, "i"), (dbus.UInt32, "u"),
                   (dbus.Int64, "x"), (dbus.UInt64, "t"), (dbus.Byte, "y"), (dbus.Double, "d"),
                   (dbus.ObjectPath, "o"), (dbus.Signature, "g"), (dbus.String, "s")):
        if isinstance(v, typ):
            return s
    if isinstance(v, dbus.ByteArray):
        return "ay"
    if isinstance(v, dbus.Dictionary):
        return "a{%s}" % v.signature if v.signature else "a{sv}"
    if isinstance(v, dbus.Array):
        return "a" + (v.signature or "?")
    return "?"


def scenario_scan(t, a):
    ifp = get_or_create(t, a.ifname, a.driver)
    n = t.scan_done
    t.call(ifp, IFACE, "Scan", "a{sv}", dbus.Dictionary({"Type": "active"}, signature="sv"))
    t.wait(lambda: t.scan_done > n, 15)
    # Scanning=false may follow ScanDone a little later (the real one flushes on a timer)
    t.wait(lambda: t.scanning is False, 5)
    ok, bsses = t.call(ifp, PROPS, "Get", "ss", IFACE, "BSSs")
    t.lines.append("bss-count %d" % len(bsses))


def scenario_connect(t, a, psk):
    ifp = get_or_create(t, a.ifname, a.driver)
    n = t.scan_done
    t.call(ifp, IFACE, "Scan", "a{sv}", dbus.Dictionary({"Type": "active"}, signature="sv"))
    t.wait(lambda: t.scan_done > n, 15)
    conf = {"ssid": dbus.ByteArray(a.ssid.encode()), "key_mgmt": "WPA-PSK" if psk else "NONE"}
    if psk:
        conf["psk"] = a.psk
    ok, net = t.call(ifp, IFACE, "AddNetwork", "a{sv}", dbus.Dictionary(conf, signature="sv"))
    t.call(ifp, IFACE, "SelectNetwork", "o", net)
    seen = []
    t.wait(lambda: t.state == "completed" or (t.state == "disconnected" and
                                              any("State=4way" in x or "State=assoc" in x
                                                  for x in t.lines)), 30)
    t.call(ifp, PROPS, "Get", "ss", IFACE, "DisconnectReason")
    del seen


SCENARIOS = {
    "wired-open": scenario_wired_open,
    "errors": scenario_errors,
    "scan": scenario_scan,
    "connect-psk": lambda t, a: scenario_connect(t, a, True),
    "connect-open": lambda t, a: scenario_connect(t, a, False),
}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("scenario", choices=sorted(SCENARIOS))
    r.add_argument("--ifname", required=True)
    r.add_argument("--driver", default="nl80211")
    r.add_argument("--ssid", default="lab")
    r.add_argument("--psk", default="")
    r.add_argument("--json", action="store_true")
    r.add_argument("--messages", action="store_true", help="also print error messages")
    c = sub.add_parser("ctl")
    c.add_argument("method", choices=sorted(CTL_SIGS))
    c.add_argument("args", nargs="*")
    a = ap.parse_args()
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    bus = dbus.bus.BusConnection(addr) if addr else dbus.SystemBus()
    if a.cmd == "ctl":
        sigs = split_sig(CTL_SIGS[a.method])
        if len(sigs) != len(a.args):
            sys.exit("ctl %s: want %d args (%s)" % (a.method, len(sigs), CTL_SIGS[a.method]))
        vals = [typed(s, json.loads(v) if s not in ("s", "o") else v) for s, v in zip(sigs, a.args)]
        obj = bus.get_object(SVC, "/net/pathman/test", introspect=False)
        try:
            res = obj.get_dbus_method(a.method, CTL)(*vals, byte_arrays=True)
        except dbus.exceptions.DBusException as e:
            sys.exit("%s: %s" % (e.get_dbus_name(), e.get_dbus_message()))
        if res is not None:
            print(json.dumps(plain(res)))
        return
    t = Tracer(bus)
    t.messages = a.messages
    SCENARIOS[a.scenario](t, a)
    if a.json:
        print(json.dumps(t.lines, indent=1))
    else:
        print("\n".join(t.lines))
    sys.exit(2 if t.timed_out else 0)


if __name__ == "__main__":
    main()
