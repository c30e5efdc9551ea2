#!/usr/bin/python3
"""tests/lab/ofono_trace.py - a D-Bus client of org.ofono that drives whatever owns the name
(the real ofonod with tests/lab/at_modem.py, or tests/lab/fake_ofono.py) through one call
sequence, as pathman/ConnMan drive oFono, and prints a NORMALISED trace, one event a line, in
wire order, so the fake can be diffed against the real one (tests/fake_ofono_vs_real.rs):

  call IFACE.MEMBER [ARGS]           a method call sent
  reply IFACE.MEMBER SIG             its reply's signature ("-" = empty)
  error IFACE.MEMBER ERRNAME         its error
  signal IFACE.MEMBER PATH NAME VAL  a signal (paths as MODEM0 / MODEM0/CTX0 by first use)
  props IFACE {KEY:SIG,...}          GetProperties: key set with value signatures
  value IFACE KEY VAL                selected values of a GetProperties
  wait WHAT ok|timeout               the scenario waited for a condition (deadline)

Normalisation (each rule says why; the --raw output shows what came in):
  - only org.ofono.{Manager,Modem,SimManager,NetworkRegistration,ConnectionManager,
    ConnectionContext} signals: the fake implements no other atom (voice calls, SMS, ...)
  - Interfaces/Features values filtered to what the fake implements (SimManager,
    NetworkRegistration, ConnectionManager / sim, net, gprs); a filtered value equal to the
    previous one of the same property is dropped (the real one grows Interfaces per atom)
  - values of dict properties (Settings, IPv6.Settings) as their KEY:SIG set, with the
    values of Interface and Method
  - SimManager CardIdentifier/MobileCountryCode/MobileNetworkCode and the value of Retries
    (SIM_FILES, IGNORED_VALUES below: the AT modem has no SIM files nor retry counters)
  - a PropertyChanged repeating the value last signalled for that property (the real one
    says Name again once it has the operator's MCC/MNC)
  - Interfaces/Features signals listed apart, after the main stream (ofonod sends them from
    an idle callback: their place among an atom's first signals depends on timing)
  - in that stream, a change strictly between its neighbours of the same property (a set
    that grows on to the next, or shrinks on) is dropped: atoms registered in the same
    main-loop turn (a loaded machine) come from ofonod as one change, one by one otherwise

Usage (DBUS_SYSTEM_BUS_ADDRESS = the lab bus; lab.sh exec sets it):
  ofono_trace.py run [--apn APN] [--raw] [--timeout S]
Exit status 0 on success; 2 if a wait timed out (the trace is still printed).
"""
import argparse
import os
import sys
import time

import dbus
import dbus.lowlevel
import dbus.mainloop.glib
from gi.repository import GLib

SVC = "org.ofono"
MANAGER = SVC + ".Manager"
MODEM = SVC + ".Modem"
SIM = SVC + ".SimManager"
NETREG = SVC + ".NetworkRegistration"
CM = SVC + ".ConnectionManager"
CTX = SVC + ".ConnectionContext"
TRACED = (MANAGER, MODEM, SIM, NETREG, CM, CTX)
FAKE_IFACES = (SIM, NETREG, CM)
FAKE_FEATURES = ("sim", "net", "gprs")

# values shown in "value" lines and PropertyChanged (others: their signature only)
SHOWN = {
    MODEM: ("Powered", "Online", "Lockdown", "Emergency", "Type"),
    SIM: ("Present", "SubscriberIdentity", "MobileCountryCode", "MobileNetworkCode",
          "PinRequired", "LockedPins"),
    NETREG: ("Mode", "Status", "Technology", "MobileCountryCode", "MobileNetworkCode",
             "Name", "Strength"),
    CM: ("Attached", "Bearer", "Suspended", "RoamingAllowed", "Powered"),
    CTX: ("Name", "Active", "Type", "AccessPointName", "Protocol", "Username", "Password",
          "AuthenticationMethod"),
}
# Retries: what the modem driver reports (the AT modem answers no PIN-retry query: {});
# the key and its signature are still compared
IGNORED_VALUES = {SIM: ("Retries",)}
# The AT modem serves no SIM elementary files (AT+CRSM: 6A82, file not found), so the real
# ofonod cannot read EFiccid (CardIdentifier) nor EFad (the MNC length it needs for
# MobileCountryCode/MobileNetworkCode); a real SIM has them, and the fake's modem does too.
# Left out of SimManager's keys and signals on both sides.
SIM_FILES = ("CardIdentifier", "MobileCountryCode", "MobileNetworkCode")


def sig_of(v):
    """The D-Bus signature of a value dbus-python handed us."""
    if isinstance(v, dbus.Boolean):
        return "b"
    for typ, s in ((dbus.Byte, "y"), (dbus.Int16, "n"), (dbus.UInt16, "q"), (dbus.Int32, "i"),
                   (dbus.UInt32, "u"), (dbus.Int64, "x"), (dbus.UInt64, "t"),
                   (dbus.Double, "d"), (dbus.ObjectPath, "o"), (dbus.Signature, "g"),
                   (dbus.String, "s")):
        if isinstance(v, typ):
            return s
    if isinstance(v, dbus.ByteArray):
        return "ay"
    if isinstance(v, dbus.Dictionary):
        return "a{%s}" % (v.signature or "sv")
    if isinstance(v, dbus.Array):
        return "a" + (v.signature or "?")
    if isinstance(v, dbus.Struct):
        return "(" + "".join(sig_of(x) for x in v) + ")"
    return "?"


class Tracer:
    def __init__(self, bus, timeout):
        self.bus = bus
        self.timeout = timeout
        self.loop = GLib.MainLoop()
        self.raw = []          # (kind, ...) in wire order
        self.names = {}
        self.waiting = None
        self.timed_out = False
        self.props = {}        # (path, iface) -> {name: value} from PropertyChanged
        self.t0 = time.monotonic()
        bus.add_signal_receiver(self.on_signal, bus_name=SVC, interface_keyword="iface",
                                member_keyword="member", path_keyword="path")

    # ---- raw events
    def ev(self, *e):
        self.raw.append((round(time.monotonic() - self.t0, 3),) + e)

    def on_signal(self, *args, iface=None, member=None, path=None):
        self.ev("signal", str(iface), str(member), str(path), list(args))
        if member == "PropertyChanged" and len(args) == 2:
            self.props.setdefault((str(path), str(iface)), {})[str(args[0])] = args[1]
        self.check_wait()

    def seen(self, path, iface, name, value=None):
        d = self.props.get((path, iface), {})
        if name not in d:
            return False
        return value is None or d[name] == value

    def mark(self):
        return len(self.raw)

    def since(self, mark, path, iface, name, value=None):
        """A PropertyChanged(name[, value]) of iface on path after mark."""
        for e in self.raw[mark:]:
            if e[1] == "signal" and e[2] == iface and e[3] == "PropertyChanged" \
                    and e[4] == path and str(e[5][0]) == name \
                    and (value is None or e[5][1] == value):
                return True
        return False

    def check_wait(self):
        if self.waiting is not None and self.waiting():
            self.waiting = None
            self.loop.quit()

    def wait(self, what, cond, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        if not cond():
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
        ok = cond()
        self.ev("wait", what, "ok" if ok else "timeout")
        if not ok:
            self.timed_out = True
        return ok

    def call(self, path, iface, member, sig="", *args, shown=None):
        """Call and wait for the answer (signals keep their wire order). -> (ok, value)"""
        m = dbus.lowlevel.MethodCallMessage(SVC, path, iface, member)
        if sig:
            m.append(*args, signature=sig)
        res = {}

        def got(reply):
            res["m"] = reply
            self.loop.quit()
        self.ev("call", iface, member, path, shown if shown is not None else
                " ".join(str(a) for a in args))
        self.bus.send_message_with_reply(m, got, 30)
        self.loop.run()
        r = res.get("m")
        if r is None or isinstance(r, dbus.lowlevel.ErrorMessage):
            name = r.get_error_name() if r is not None else "noreply"
            self.ev("error", iface, member, path, name)
            return False, name
        vals = r.get_args_list()
        self.ev("reply", iface, member, path, r.get_signature() or "-")
        return True, (vals[0] if len(vals) == 1 else vals)

    def get_props(self, path, iface):
        ok, v = self.call(path, iface, "GetProperties")
        if ok:
            self.ev("props", iface, path, v)
        return v if ok else None

    # ---- normalised lines
    def npath(self, p):
        p = str(p)
        if p == "/":
            return p
        parts = p.strip("/").split("/")
        if parts[0] not in self.names:
            self.names[parts[0]] = "MODEM%d" % len(self.names)
        out = self.names[parts[0]]
        if len(parts) > 1:
            key = p
            if key not in self.names:
                n = sum(1 for k in self.names if k.count("/") >= 2)
                self.names[key] = "CTX%d" % n
            out += "/" + self.names[key]
        return out

    def nval(self, v, iface=None, name=None):
        if isinstance(v, dbus.ObjectPath):
            return self.npath(v)
        if isinstance(v, dbus.Dictionary):
            keys = ",".join("%s:%s" % (k, sig_of(v[k])) for k in sorted(v))
            extra = "".join(" %s=%s" % (k, v[k]) for k in ("Interface", "Method") if k in v)
            return "{" + keys + "}" + extra
        if isinstance(v, dbus.Array):
            return "[" + ",".join(self.nval(x) for x in v) + "]"
        if isinstance(v, dbus.Boolean):
            return "true" if v else "false"
        if isinstance(v, dbus.Byte):
            return "%d:y" % int(v)
        return "%s:%s" % (v, sig_of(v))

    def normalised(self):
        """The main stream, then the Interfaces/Features stream: ofonod batches Interfaces
        changes in an idle callback, so where they land among an atom's own first signals
        depends on timing; their own order is compared."""
        out, last, ifl, seen = [], {}, [], {}
        for e in self.raw:
            kind = e[1]
            if kind == "signal":
                iface, member, path, args = e[2:]
                if iface not in TRACED:
                    continue
                if member == "PropertyChanged":
                    name, v = str(args[0]), args[1]
                    if iface == SIM and name in SIM_FILES:
                        continue
                    if iface == MODEM and name == "Interfaces":
                        v = dbus.Array([x for x in v if x in FAKE_IFACES], signature="s")
                    elif iface == MODEM and name == "Features":
                        v = dbus.Array([x for x in v if x in FAKE_FEATURES], signature="s")
                    if iface == MODEM and name in ("Interfaces", "Features"):
                        shown = "[" + ",".join(sorted(str(x) for x in v)) + "]"
                        key = (path, name)
                        if last.get(key) == shown:
                            continue
                        last[key] = shown
                        ifl.append("signal %s.%s %s %s %s" % (iface, member, self.npath(path),
                                                             name, shown))
                        continue
                    # a value it has already signalled: the real one says Name again once
                    # it knows the operator's MCC/MNC; an unchanged value tells a client
                    # nothing
                    key = (path, iface, name)
                    if key in seen and seen[key] == v:
                        continue
                    seen[key] = v
                    if isinstance(v, dbus.Dictionary) or name in SHOWN.get(iface, ()):
                        shown = self.nval(v)
                    else:
                        shown = "<%s>" % sig_of(v)
                    out.append("signal %s.%s %s %s %s" % (iface, member, self.npath(path),
                                                         name, shown))
                else:
                    out.append("signal %s.%s %s %s" % (iface, member, self.npath(path),
                                                      " ".join(self.nval(a) for a in args)))
            elif kind == "call":
                iface, member, path, shown = e[2:]
                out.append(("call %s.%s %s %s" % (iface, member, self.npath(path), shown))
                           .rstrip())
            elif kind == "reply":
                out.append("reply %s.%s %s" % (e[2], e[3], e[5]))
            elif kind == "error":
                out.append("error %s.%s %s" % (e[2], e[3], e[5]))
            elif kind == "props":
                iface, path, v = e[2:]
                if iface == SIM:
                    v = {k: x for k, x in v.items() if k not in SIM_FILES}
                out.append("props %s %s {%s}" % (iface, self.npath(path), ",".join(
                    "%s:%s" % (k, sig_of(v[k])) for k in sorted(v))))
                for k in sorted(v):
                    if k in IGNORED_VALUES.get(iface, ()):
                        continue
                    if k in SHOWN.get(iface, ()) or isinstance(v[k], dbus.Dictionary):
                        out.append("value %s %s %s" % (iface, k, self.nval(v[k])))
            elif kind == "wait":
                out.append("wait %s %s" % (e[2], e[3]))
            elif kind == "note":
                out.append(e[2])
        return out + ["--- Interfaces and Features, in order"] + monotonic_ends(ifl)


def monotonic_ends(ifl):
    """The Interfaces/Features stream without the changes that lie strictly between their
    neighbours of the same property and path (prev < cur < next, or prev > cur > next, as
    sets): ofonod adds an atom's interface from an idle callback, so two atoms registered
    in one main-loop turn make one change where a quiet machine makes two. What is kept:
    every turn of direction, in order."""
    def parse(line):
        head, _, val = line.rpartition(" ")
        return head, frozenset(x for x in val.strip("[]").split(",") if x)
    parsed = [parse(line) for line in ifl]
    keep = []
    for i, (head, cur) in enumerate(parsed):
        prev = next((v for h, v in reversed(parsed[:i]) if h == head), None)
        nxt = next((v for h, v in parsed[i + 1:] if h == head), None)
        between = prev is not None and nxt is not None and (
            prev < cur < nxt or prev > cur > nxt)
        if not between:
            keep.append(ifl[i])
    return keep


def has_iface(t, modem, iface):
    v = t.props.get((modem, MODEM), {}).get("Interfaces")
    return v is not None and iface in v


def scenario(t, a):
    ok, modems = t.call("/", MANAGER, "GetModems")
    if not ok or len(modems) != 1:
        t.ev("note", "modems %r" % (modems,))
        return
    modem, mprops = modems[0]
    modem = str(modem)
    t.ev("props", MODEM, modem, mprops)
    t.get_props(modem, MODEM)

    def set_prop(path, iface, name, value, shown=None):
        return t.call(path, iface, "SetProperty", "sv", name, value,
                      shown=shown if shown is not None else "%s %s" % (name, t.nval(value)))

    # Powered: SimManager and the IMSI
    set_prop(modem, MODEM, "Powered", dbus.Boolean(True))
    t.wait("powered", lambda: t.seen(modem, MODEM, "Powered", True))
    t.wait("sim-manager", lambda: has_iface(t, modem, SIM))
    t.wait("imsi", lambda: t.seen(modem, SIM, "SubscriberIdentity"))
    for i in (MODEM, SIM):
        t.get_props(modem, i)
    # errors while powered and offline
    set_prop(modem, MODEM, "Online", dbus.String("true"))
    set_prop(modem, MODEM, "NoSuchProperty", dbus.Boolean(True))
    set_prop(modem, MODEM, "Manufacturer", dbus.String("x"))
    set_prop(modem, MODEM, "Powered", dbus.Boolean(True))    # as it is: reply, no signal
    t.call(modem, MODEM, "SetProperty", "ss", "Online", "true", shown="(signature ss)")
    t.call(modem, MODEM, "NoSuchMethod")
    t.call(modem, NETREG, "GetProperties")       # offline: not in Interfaces
    t.call(modem, CM, "GetProperties")           # phonesim: gprs only once online

    # Online: registration, ConnectionManager, attach
    set_prop(modem, MODEM, "Online", dbus.Boolean(True))
    t.wait("online", lambda: t.seen(modem, MODEM, "Online", True))
    t.wait("registered", lambda: t.seen(modem, NETREG, "Status", "registered"))
    t.wait("strength", lambda: t.seen(modem, NETREG, "Strength"))
    t.wait("attached", lambda: t.seen(modem, CM, "Attached", True))
    for i in (MODEM, SIM, NETREG, CM):
        t.get_props(modem, i)
    ok, ctxs = t.call(modem, CM, "GetContexts")
    if not ok or not ctxs:
        t.ev("note", "no contexts")
        return
    ctx = str(ctxs[0][0])
    t.ev("props", CTX, ctx, ctxs[0][1])
    t.ev("note", "contexts %d" % len(ctxs))

    # detached (ConnectionManager Powered false): errors
    set_prop(modem, CM, "Powered", dbus.Boolean(False))
    t.wait("detached-cm-off", lambda: t.seen(modem, CM, "Attached", False))
    set_prop(ctx, CTX, "Active", dbus.Boolean(True))
    set_prop(ctx, CTX, "Active", dbus.String("yes"))
    set_prop(ctx, CTX, "AccessPointName", dbus.Int32(5))
    set_prop(ctx, CTX, "NoSuchProperty", dbus.String("x"))
    set_prop(ctx, CTX, "AccessPointName", dbus.String("bad apn!"))
    set_prop(ctx, CTX, "Settings", dbus.Dictionary({}, signature="sv"))
    set_prop(ctx, CTX, "Type", dbus.String("bogus"))
    set_prop(ctx, CTX, "Protocol", dbus.String("bogus"))
    set_prop(ctx, CTX, "Active", dbus.Boolean(False))         # as it is
    t.call(ctx, CTX, "SetProperty", "ss", "Active", "true", shown="(signature ss)")
    t.call(ctx, CTX, "NoSuchMethod")
    set_prop(modem, CM, "NoSuchProperty", dbus.Boolean(True))
    set_prop(modem, CM, "Attached", dbus.Boolean(True))
    set_prop(modem, CM, "RoamingAllowed", dbus.String("x"))
    set_prop(modem, CM, "Powered", dbus.Boolean(True))
    t.wait("attached-again", lambda: t.seen(modem, CM, "Attached", True))

    # the context
    set_prop(ctx, CTX, "AccessPointName", dbus.String(a.apn))
    t.wait("apn", lambda: t.seen(ctx, CTX, "AccessPointName", a.apn))
    set_prop(ctx, CTX, "AccessPointName", dbus.String(a.apn))
    set_prop(ctx, CTX, "Active", dbus.Boolean(True))
    t.wait("active", lambda: t.seen(ctx, CTX, "Active", True))
    t.get_props(ctx, CTX)
    set_prop(ctx, CTX, "Active", dbus.Boolean(True))
    set_prop(ctx, CTX, "AccessPointName", dbus.String("other"))
    set_prop(ctx, CTX, "Active", dbus.Boolean(False))
    t.wait("inactive", lambda: t.seen(ctx, CTX, "Active", False))
    t.get_props(ctx, CTX)

    # Online false with an active context
    set_prop(ctx, CTX, "Active", dbus.Boolean(True))
    t.wait("active-again", lambda: t.seen(ctx, CTX, "Active", True))
    set_prop(modem, MODEM, "Online", dbus.Boolean(False))
    t.wait("offline", lambda: t.seen(modem, MODEM, "Online", False))
    t.wait("cm-gone", lambda: not has_iface(t, modem, CM) and not has_iface(t, modem, NETREG))
    for i in (MODEM, SIM, NETREG, CM):
        t.get_props(modem, i)
    t.call(modem, CM, "GetContexts")
    t.get_props(ctx, CTX)

    # Online again: the context comes back, inactive, with its APN
    m = t.mark()
    set_prop(modem, MODEM, "Online", dbus.Boolean(True))
    t.wait("online-again", lambda: has_iface(t, modem, CM))
    t.wait("attached-online-again", lambda: t.since(m, modem, CM, "Attached", True))
    ok, ctxs = t.call(modem, CM, "GetContexts")
    if ok:
        t.ev("note", "contexts %d" % len(ctxs))
        for path, props in ctxs:
            t.ev("props", CTX, str(path), props)

    # Powered false while online
    set_prop(modem, MODEM, "Powered", dbus.Boolean(False))
    t.wait("unpowered", lambda: t.seen(modem, MODEM, "Powered", False))
    t.wait("no-interfaces", lambda: not has_iface(t, modem, SIM))
    t.get_props(modem, MODEM)


def selftest():
    """monotonic_ends on the traces a loaded and a quiet machine gave (fake_ofono_vs_real)."""
    p = "signal org.ofono.Modem.PropertyChanged MODEM0 "
    i = lambda v: p + "Interfaces [%s]" % v
    f = lambda v: p + "Features [%s]" % v
    sim, nr, cm = "org.ofono.SimManager", "org.ofono.NetworkRegistration", "org.ofono.ConnectionManager"
    loaded = [i(sim), f("sim"), i(",".join([cm, nr, sim])), f("gprs,net,sim"), i(""), f("")]
    quiet = [i(sim), f("sim"), i(",".join([nr, sim])), f("net,sim"),
             i(",".join([cm, nr, sim])), f("gprs,net,sim"), i(""), f("")]
    assert monotonic_ends(quiet) == loaded, monotonic_ends(quiet)
    assert monotonic_ends(loaded) == loaded
    # a turn of direction is kept: down to SimManager and up again
    turn = [i(",".join([cm, nr, sim])), i(sim), i(",".join([nr, sim]))]
    assert monotonic_ends(turn) == turn
    # another modem's changes are no neighbours
    other = [i(sim), i(",".join([nr, sim])).replace("MODEM0", "MODEM1"),
             i(",".join([cm, nr, sim]))]
    assert monotonic_ends(other) == other
    print("selftest ok")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--apn", default="internet")
    r.add_argument("--raw", action="store_true", help="print the raw events too (stderr)")
    r.add_argument("--timeout", type=float, default=20)
    sub.add_parser("selftest", help="check the normalisation of the Interfaces stream")
    a = ap.parse_args()
    if a.cmd == "selftest":
        selftest()
        return
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    bus = dbus.bus.BusConnection(addr) if addr else dbus.SystemBus()
    t = Tracer(bus, a.timeout)
    scenario(t, a)
    if a.raw:
        for e in t.raw:
            sys.stderr.write("%r\n" % (e,))
    print("\n".join(t.normalised()))
    sys.exit(2 if t.timed_out else 0)


if __name__ == "__main__":
    main()
