#!/usr/bin/python3
"""tests/lab/fake_ofono.py - a fake oFono daemon (org.ofono) for the namespace lab, for what the
real ofonod with a simulated AT modem cannot produce on demand: static IPv4 Settings, IPv6
Settings, odd or hostile Settings, activation errors, hangs, and oFono crashing in the middle of
an activation. Written from oFono's D-Bus API as documented (doc/manager-api.txt, modem-api.txt,
sim-api.txt, network-api.txt, connman-api.txt) and the facts in the project's reference notes;
no oFono code or text is used. A second harness runs the real ofonod (tests/lab/at_modem.py).

It owns org.ofono on the bus in DBUS_SYSTEM_BUS_ADDRESS (or --bus ADDRESS) and exports, with
oFono's signatures:
  /            org.ofono.Manager: GetModems() -> a(oa{sv}); ModemAdded(o, a{sv}), ModemRemoved(o)
  /NAME        org.ofono.Modem, and as Interfaces lists them org.ofono.SimManager,
               org.ofono.NetworkRegistration, org.ofono.ConnectionManager: each has
               GetProperties() -> a{sv} and PropertyChanged(s, v); Modem, ConnectionManager
               and ConnectionContext have SetProperty(s, v)
  /NAME/contextN  org.ofono.ConnectionContext
Nothing here touches the kernel: the Interface named in Settings must exist (tests create it,
e.g. the lab's veth eth0); the client configures it.

Test control, same bus name, object /net/pathman/test, interface net.pathman.test.FakeOfono
(not in the trace):
  AddModem(s name, a{sv} knobs) -> o     a modem at /NAME (name "" = fake_N), ModemAdded.
        Knobs (all optional; ints of any D-Bus int type, lists as as):
        imsi s (001010123456789), mcc s / mnc s (default: IMSI digits 1-3 / 4-5),
        operator s (Fake Telecom), strength y (77), status s (registered | roaming |
        searching | denied | unregistered | unknown: what the network answers once online),
        technology s (lte), bearer s (lte: ConnectionManager.Bearer when attached; none: as
        a modem that reports no bearer, like the lab's AT modem: Bearer stays none [r]),
        sim s (ready | absent | pin | puk), contexts u (1: internet contexts it starts with),
        apn s (internet; not checked: any text, "" as oFono's unprovisioned context [r]),
        protocol s (ip), type s (hardware: Modem.Type),
        powered b / online b (false: the state it starts in, no signals),
        manufacturer s, model s, revision s, serial s, max_active u (2: contexts active at
        once, like the number of gprs-context drivers), cm_stage s (sim: ConnectionManager
        appears once the SIM is ready, as for drivers that create gprs in post_sim | online:
        only while online, as for drivers that create gprs in post_online, like ofonod 1.31's
        phonesim [r]), roaming_allowed b (false),
        settings to hand out on activation: interface s (eth0), method s (static | dhcp),
        address s (198.18.1.50), netmask s (255.255.255.0), gateway s (198.18.1.1),
        dns as ([198.18.1.1]), proxy s (mms contexts only), ipv6_interface s (= interface),
        ipv6_address s (fd18:1::50), ipv6_prefix y (64), ipv6_gateway s (fd18:1::1),
        ipv6_dns as ([fd18:1::1]); or raw: settings a{sv}, ipv6_settings a{sv} (verbatim).
  RemoveModem(o modem)             ModemRemoved; its objects vanish without other signals [f]
  SetRegistration(o modem, s status)   what the network says now (values as the knob):
        NetworkRegistration.Status changes (if online); attach/detach follow
  SetStrength(o modem, y strength) NetworkRegistration.Strength (signalled when registered)
  Detach(o modem) / Attach(o modem)   the network detaches the packet service (and keeps it
        detached until Attach), as an AT modem's +CGREG/+CGEV would report it
  FailNext(o context, s error)     the next activation of that context answers that error
        name (any valid D-Bus error name) after the activation delay; state unchanged
  SetSettings(o context, a{sv})    raw Settings handed out on activations from now on,
        whatever the Protocol; any types, no checks (hostile data: wrong types, no Interface,
        unknown Method, 0.0.0.0 netmask, 50 DNS servers). While active: PropertyChanged now [f]
  SetIPv6Settings(o context, a{sv})   the same for IPv6.Settings
  SetActivationDelay(u ms)         time from SetProperty(Active) to its reply (default 20)
  NoReplyNext(o context)           the next SetProperty on that context is never answered; if
        it was Active, the context stays busy (InProgress) until the network deactivates it,
        the modem detaches or goes offline (a hung modem) [f]
  DeactivateByNetwork(o context)   the network ends the context: Settings {}, IPv6.Settings
        {}, Active false, no call involved; a busy (hung or activating) context: its pending
        activation answers org.ofono.Error.Failed
  Crash()                          exit at once, exit status 1, without cleanup (pending
        activations never answered: clients get NoReply)
  Trace() -> as                    ordered: "call IFACE.MEMBER PATH ARGS", "reply IFACE.MEMBER
        PATH", "error NAME IFACE.MEMBER PATH", "signal IFACE.MEMBER PATH ARGS",
        "swallowed IFACE.MEMBER PATH"
  ClearTrace()
  A control call with other argument types, an unknown knob or object: DBus.Error.InvalidArgs.

Behaviour (tags: [d] oFono's documented D-Bus API as I know it, [k] oFono's behaviour as I know
its implementation (not measured here), [r] measured on ofonod 1.31 here (the project's
reference notes), [f] the fake's own choice, documented):
  Dispatch: a method with another signature, or on an interface the object does not have now
    (not in Interfaces) -> org.freedesktop.DBus.Error.UnknownMethod, as gdbus leaves it to
    libdbus [r]. No org.freedesktop.DBus.Properties: oFono has GetProperties/SetProperty [d].
    Property values carry oFono's types: Strength y, PrefixLength y, lists as [d, r]. A
    context object while the modem is offline (cm_stage online) -> UnknownObject [r].
  Manager: GetModems lists every modem with its Modem properties; ModemAdded/ModemRemoved [d].
  Modem: Powered, Online, Lockdown writable, others read-only -> InvalidArguments; a wrong
    value type -> InvalidArguments [d, r]. Type "hardware" [r].
    Powered true: reply, PropertyChanged(Powered), then (a step later: --step-ms, 10 ms)
    SimManager joins Interfaces, then PropertyChanged Manufacturer, Model, Revision, Serial
    (devinfo: GetProperties has them only while powered) [r]; a ready SIM then reads its
    IMSI: SimManager PropertyChanged SubscriberIdentity [r], MobileCountryCode,
    MobileNetworkCode [k: the lab's AT modem has no EFad to measure them with] (GetProperties
    has them only from then on), then ConnectionManager joins Interfaces (cm_stage sim) [k].
    Every Interfaces change is PropertyChanged("Interfaces") followed by
    PropertyChanged("Features") (sim, gprs, net) [r]; ofonod sends them from an idle callback,
    so a real one's may come a little after the atom's first signals [r]. Interfaces lists
    only the interfaces the fake implements [f].
    Online true while not powered, or while the SIM is absent or locked -> org.ofono.Error.
    NotAvailable (the modem never left its pre-SIM state) [d, k]. Online true: reply,
    PropertyChanged(Online) [r], NetworkRegistration (and ConnectionManager with cm_stage
    online) joins Interfaces with Status searching (not signalled) [f]; a step later the
    network's answer: Status, then LocationAreaCode, CellId, Technology, Strength, Name,
    MobileCountryCode, MobileNetworkCode [r] (the real one says Name once more after the
    MCC/MNC, with the same value: not mimicked [f]); then the attach. Online false: reply,
    Online false, then with cm_stage online NetworkRegistration and ConnectionManager leave
    Interfaces in one change, with no other signal: no Attached false, no context signals;
    the context objects vanish (UnknownObject) without ContextRemoved, inactive, and come
    back with the same paths and their properties once online again [r]. With cm_stage sim:
    every active context goes down (Settings {}, Active false), Attached false, then
    NetworkRegistration leaves Interfaces [k; order f]. Contexts are kept, never removed by
    going offline [r]. Powered false: reply, Powered false, Online false (if it was),
    then every interface leaves Interfaces in one change, with no other signal [r].
    A change while a power or online change is under way -> InProgress [k]. Setting a value
    it already has: reply, no signal [k]. Lockdown true powers the modem off and refuses
    Powered true with org.ofono.Error.InUse until Lockdown is false again [f].
  SimManager: Present b, CardSlotCount u (1), ActiveCardSlot u (1) [r]; with a SIM also
    CardIdentifier [d; the lab's AT modem has no EFiccid, so not measured], PinRequired (none | pin | puk),
    LockedPins as, Retries a{sy}, FixedDialing b, BarredDialing b, SubscriberNumbers as;
    SubscriberIdentity, MobileCountryCode, MobileNetworkCode once the IMSI is read (never
    with a locked SIM) [d]. No SetProperty/EnterPin here [f].
  NetworkRegistration: Mode "auto", Status registered | roaming | searching | denied |
    unregistered | unknown; LocationAreaCode q, CellId u, Technology, MobileCountryCode,
    MobileNetworkCode, Name, Strength y only while registered or roaming [d, k].
  ConnectionManager: Attached, Bearer (none while detached), Suspended, RoamingAllowed,
    Powered (default true) [d, r]. Attach happens, a step after the conditions hold: online,
    CM Powered, not Detach()ed, Status registered or roaming with RoamingAllowed [k]. While
    it is under way (attaching), SetProperty(Active, true) -> AttachInProgress [k]. Detach:
    every active context goes down (Settings {}, Active false), then Attached false, Bearer
    none (if it was not) [k] (a real ofonod 1.31 with phonesim keeps its context Active on a
    network detach: tests/ofono_harness.rs network_detach_knob; the fake's Detach takes it
    down, as a context driver that reports the deactivation would [f]). Powered false
    detaches the same way [r]. SetProperty: Powered, RoamingAllowed (b) [d]: PropertyChanged
    first, then the reply [r]; other names (Attached too) or types -> InvalidArguments [r]. GetContexts -> a(oa{sv}) by path [d]. AddContext(type):
    internet | mms | wap | ims | supl | ia, else InvalidFormat; the lowest free contextN,
    empty APN, Protocol ip; reply, ContextAdded(o, a{sv}) [d, k]. RemoveContext(o): unknown
    -> NotFound; active: it is deactivated first (Settings {}, IPv6.Settings {}, Active
    false), then reply, ContextRemoved(o) [k]. DeactivateAll(): every active context down,
    then reply [d].
  ConnectionContext: GetProperties Name, Active, Type, AccessPointName, Protocol, Username,
    Password, AuthenticationMethod (chap by default), (MessageProxy, MessageCenter for mms),
    Settings, IPv6.Settings [d, r: 1.31 has no Preferred]. SetProperty of Active,
    AccessPointName, Type, Protocol, Name, Username, Password, AuthenticationMethod
    (MessageProxy, MessageCenter for mms) [d]; success: reply, then PropertyChanged(name,
    value) if changed (none if not) [r]. Errors, checked in this order [k]: wrong value type
    or unknown / read-only property (Settings too) -> InvalidArguments [r]; the context busy
    (activating, deactivating, hung) -> InProgress; a property other than Active while
    active -> InUse [r]; AccessPointName not 0-100 chars of
    [A-Za-z0-9-] separated by single dots, Type/Protocol/AuthenticationMethod not one of
    theirs, Name over 127, Username/Password over 255 chars -> InvalidFormat ("bad apn!",
    Type/Protocol "bogus" [r]; an empty APN is accepted [f]). Active true: attaching ->
    AttachInProgress [k], not attached -> NotAttached [r], max_active contexts already
    active -> NotImplemented (no gprs-context driver left) [k]; a FailNext error after the
    delay [f]; Active as it is: reply, no signal [r]. Activation, as gprs.c's activation
    callback does it: the method reply, then PropertyChanged("Settings", {Interface, Method,
    Address, Netmask, Gateway, DomainNameServers[, Proxy]}) for Protocol ip and dual,
    PropertyChanged("IPv6.Settings", {Interface, Address, PrefixLength, Gateway,
    DomainNameServers}) for ipv6 and dual (raw Settings from SetSettings / the settings
    knobs are sent whatever the Protocol), then PropertyChanged("Active", true) [r for ip:
    no IPv6.Settings signal; k for ipv6, dual]; Method dhcp settings have Interface and
    Method only [r]. Deactivation: reply, then {} for each of Settings / IPv6.Settings that
    activation signalled, Active false [r for ip]. Both take the activation delay [f].

Storage: with --state-dir DIR (lab.sh fakeofono start passes DIR = <lab>/fakeofono-state),
what oFono keeps per IMSI in its gprs settings file is kept in DIR/<IMSI>.json: every
context's Name, Type, AccessPointName, Username, Password, Protocol, AuthenticationMethod,
Preferred, MessageProxy, MessageCenter (by id), and ConnectionManager Powered and
RoamingAllowed [k]. A modem whose IMSI has such a file gets its contexts from it (inactive)
instead of the contexts/apn/protocol knobs, also after a crash and restart [k]. Settings,
FailNext and the other control state are not kept [f].

Startup: --modem JSON (repeatable: the knobs of AddModem, plus "name"; default: one modem
fake_0 with default knobs unless --no-modem), --step-ms N (10), --activation-ms N (20),
--state-dir DIR, --bus ADDRESS.
Client: fake_ofono.py ctl METHOD [ARG...] calls a control METHOD (DBUS_SYSTEM_BUS_ADDRESS =
the lab bus): s/o arguments as they are, y/u as numbers, a{sv} as a JSON object (strings ->
s, booleans -> b, integers -> i, floats -> d, lists of strings -> as, other lists -> av,
objects -> a{sv}, {"@SIG": VALUE} for another type, e.g. {"@y": 5}, {"@u": 7},
{"@as": []}, {"@ay": "00ff"}); prints the reply as JSON.
"""
import argparse
import json
import os
import re
import sys
import traceback

import dbus
import dbus.lowlevel
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

SVC = "org.ofono"
MANAGER = SVC + ".Manager"
MODEM = SVC + ".Modem"
SIM = SVC + ".SimManager"
NETREG = SVC + ".NetworkRegistration"
CM = SVC + ".ConnectionManager"
CTX = SVC + ".ConnectionContext"
CTL = "net.pathman.test.FakeOfono"
CTL_PATH = "/net/pathman/test"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"

E = SVC + ".Error."
E_INVALID = E + "InvalidArguments"
E_FORMAT = E + "InvalidFormat"
E_NOTAVAIL = E + "NotAvailable"
E_INPROGRESS = E + "InProgress"
E_INUSE = E + "InUse"
E_NOTATTACHED = E + "NotAttached"
E_ATTACHING = E + "AttachInProgress"
E_NOTIMPL = E + "NotImplemented"
E_FAILED = E + "Failed"
E_NOTFOUND = E + "NotFound"
E_DBUS_INVALID = "org.freedesktop.DBus.Error.InvalidArgs"
E_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"

TEXT = {E_INVALID: "Invalid arguments", E_FORMAT: "Invalid format", E_NOTAVAIL: "Not available",
        E_INPROGRESS: "Already in progress", E_INUSE: "In use", E_NOTATTACHED: "Not attached",
        E_ATTACHING: "Attach in progress", E_NOTIMPL: "Not implemented", E_FAILED: "Failed",
        E_NOTFOUND: "Not found"}

FEATURE = {SIM: "sim", CM: "gprs", NETREG: "net"}
CONTEXT_TYPES = ("internet", "mms", "wap", "ims", "supl", "ia")
PROTOCOLS = ("ip", "ipv6", "dual")
AUTH_METHODS = ("chap", "pap", "none")
REG_STATUS = ("registered", "roaming", "searching", "denied", "unregistered", "unknown")
SIM_STATES = ("ready", "absent", "pin", "puk")

# Methods per interface: member -> (in signature, out signature); signals for Introspect
METHODS = {
    MANAGER: {"GetModems": ("", "a(oa{sv})")},
    MODEM: {"GetProperties": ("", "a{sv}"), "SetProperty": ("sv", "")},
    SIM: {"GetProperties": ("", "a{sv}")},
    NETREG: {"GetProperties": ("", "a{sv}")},
    CM: {"GetProperties": ("", "a{sv}"), "SetProperty": ("sv", ""),
         "AddContext": ("s", "o"), "RemoveContext": ("o", ""), "DeactivateAll": ("", ""),
         "GetContexts": ("", "a(oa{sv})")},
    CTX: {"GetProperties": ("", "a{sv}"), "SetProperty": ("sv", "")},
}
SIGNALS = {
    MANAGER: [("ModemAdded", "path:o properties:a{sv}"), ("ModemRemoved", "path:o")],
    MODEM: [("PropertyChanged", "name:s value:v")],
    SIM: [("PropertyChanged", "name:s value:v")],
    NETREG: [("PropertyChanged", "name:s value:v")],
    CM: [("PropertyChanged", "name:s value:v"), ("ContextAdded", "path:o properties:a{sv}"),
         ("ContextRemoved", "path:o")],
    CTX: [("PropertyChanged", "name:s value:v")],
}

CTL_SIGS = {
    "AddModem": "sa{sv}", "RemoveModem": "o", "SetRegistration": "os", "SetStrength": "oy",
    "Detach": "o", "Attach": "o", "FailNext": "os", "SetSettings": "oa{sv}",
    "SetIPv6Settings": "oa{sv}", "SetActivationDelay": "u", "NoReplyNext": "o",
    "DeactivateByNetwork": "o", "Crash": "", "Trace": "", "ClearTrace": "",
}

FAKE = None   # the Fake singleton
DEFER = object()   # a handler's result: it answers (or never answers) the call itself


class OfonoError(Exception):
    def __init__(self, name, text=None):
        Exception.__init__(self, name)
        self.name = name
        self.text = text if text is not None else TEXT.get(name, "")


def err(name, text=""):
    return dbus.exceptions.DBusException(text, name=name)


def brief(v, depth=0):
    """A short, stable text form of a D-Bus value for the trace."""
    if isinstance(v, (dbus.ByteArray, bytes)):
        return "0x" + bytes(v).hex() if v else "0x"
    if isinstance(v, dbus.Array) and v.signature == "y":
        return "0x" + bytes(int(b) for b in v).hex()
    if isinstance(v, dict):
        if depth > 2:
            return "{...}"
        return "{" + ",".join("%s=%s" % (k, brief(v[k], depth + 1)) for k in sorted(v)) + "}"
    if isinstance(v, (list, tuple)):
        if len(v) > 8:
            return "[%d items]" % len(v)
        return "[" + ",".join(brief(x, depth + 1) for x in v) + "]"
    if isinstance(v, dbus.Boolean):
        return "true" if v else "false"
    if isinstance(v, dbus.Byte):
        return str(int(v))
    return str(v)


def S(v):
    return dbus.String(v)


def B(v):
    return dbus.Boolean(bool(v))


def AS(v):
    return dbus.Array([dbus.String(x) for x in v], signature="s")


def D(d):
    return dbus.Dictionary(d, signature="sv")


def is_valid_apn(apn):
    if len(apn) > 100:
        return False
    if apn == "":
        return True
    return all(re.fullmatch(r"[A-Za-z0-9-]+", label) for label in apn.split("."))


def ctl_path_ok(p):
    return re.fullmatch(r"[A-Za-z0-9_]{1,64}", p) is not None


class Call:
    """One incoming method call: answered at most once, every answer traced."""

    def __init__(self, conn, msg):
        self.conn = conn
        self.msg = msg
        self.done = False
        self.what = "%s.%s %s" % (msg.get_interface() or "", msg.get_member(), msg.get_path())

    def reply(self, sig="", *vals):
        if self.done:
            return
        self.done = True
        m = dbus.lowlevel.MethodReturnMessage(self.msg)
        if sig:
            m.append(*vals, signature=sig)
        FAKE.trace.append("reply " + self.what)
        if not self.msg.get_no_reply():
            self.conn.send_message(m)

    def error(self, name, text=None):
        if self.done:
            return
        self.done = True
        FAKE.trace.append("error %s %s" % (name, self.what))
        if not self.msg.get_no_reply():
            self.conn.send_message(dbus.lowlevel.ErrorMessage(
                self.msg, name, text if text is not None else TEXT.get(name, "")))

    def swallow(self):
        self.done = True
        FAKE.trace.append("swallowed " + self.what)


class OObj(dbus.service.Object):
    """An object with oFono-style methods: handler h_<Iface>_<Member>(call, *args) per entry
    of METHODS for the interfaces it has now (ifaces()). A handler returns the out value,
    None, or DEFER (then it answers through call itself), or raises OfonoError."""

    def __init__(self, path):
        self.path = path
        self.exported = False
        dbus.service.Object.__init__(self)
        self.export()

    def export(self):
        if not self.exported:
            self.add_to_connection(FAKE.bus, self.path)
            self.exported = True

    def unexport(self):
        if self.exported:
            self.exported = False
            try:
                self.remove_from_connection()
            except Exception:
                pass

    def ifaces(self):
        return []

    def _message_cb(self, connection, message):
        if not isinstance(message, dbus.lowlevel.MethodCallMessage):
            return
        iface, member = message.get_interface(), message.get_member()
        sig = message.get_signature() or ""
        if iface in (None, INTROSPECTABLE) and member == "Introspect" and sig == "":
            m = dbus.lowlevel.MethodReturnMessage(message)
            m.append(self.introspect_xml(connection), signature="s")
            connection.send_message(m)
            return
        FAKE.trace_call(message)
        call = Call(connection, message)
        have = self.ifaces()
        if iface is None:
            iface = next((i for i in have if member in METHODS[i]), None)
        entry = METHODS.get(iface, {}).get(member) if iface in have else None
        if entry is None or entry[0] != sig:
            call.error(E_UNKNOWN_METHOD, 'Method "%s" with signature "%s" on interface "%s" '
                       "doesn't exist" % (member, sig, iface))
            return
        handler = getattr(self, "h_%s_%s" % (iface.rsplit(".", 1)[1], member))
        try:
            res = handler(call, *message.get_args_list())
        except OfonoError as e:
            call.error(e.name, e.text)
            return
        except Exception as e:   # never die on a client's input
            sys.stderr.write("fake_ofono: error handling %s: %r\n%s" % (member, e,
                                                                        traceback.format_exc()))
            call.error(E_FAILED)
            return
        if res is DEFER:
            return
        if entry[1]:
            call.reply(entry[1], res)
        else:
            call.reply()

    def introspect_xml(self, connection):
        x = ['<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
             ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n<node name="%s">'
             % self.path,
             '  <interface name="%s"><method name="Introspect"><arg name="xml" type="s" '
             'direction="out"/></method></interface>' % INTROSPECTABLE]
        for i in self.ifaces():
            x.append('  <interface name="%s">' % i)
            for name, (ins, outs) in METHODS[i].items():
                x.append('    <method name="%s">' % name)
                for s in split_sig(ins):
                    x.append('      <arg type="%s" direction="in"/>' % s)
                for s in split_sig(outs):
                    x.append('      <arg type="%s" direction="out"/>' % s)
                x.append("    </method>")
            for name, args in SIGNALS[i]:
                x.append('    <signal name="%s">' % name + "".join(
                    '<arg name="%s" type="%s"/>' % tuple(a.split(":", 1)) for a in args.split())
                    + "</signal>")
            x.append("  </interface>")
        for child in connection.list_exported_child_objects(self.path):
            x.append('  <node name="%s"/>' % child)
        x.append("</node>")
        return "\n".join(x)


def split_sig(sig):
    """Complete types of a signature: "sa{sv}" -> ["s", "a{sv}"]."""
    out, i = [], 0
    while i < len(sig):
        j = i
        while sig[j] == "a":
            j += 1
        if sig[j] in "({":
            close = {"(": ")", "{": "}"}[sig[j]]
            depth = 0
            while True:
                if sig[j] in "({":
                    depth += 1
                elif sig[j] in ")}":
                    depth -= 1
                if depth == 0 and sig[j] == close:
                    break
                j += 1
        out.append(sig[i:j + 1])
        i = j + 1
    return out


class Manager(OObj):
    def __init__(self):
        OObj.__init__(self, "/")

    def ifaces(self):
        return [MANAGER]

    def h_Manager_GetModems(self, call):
        return dbus.Array([dbus.Struct((dbus.ObjectPath(m.path), m.modem_props()),
                                       signature="oa{sv}")
                           for m in FAKE.modems.values()], signature="(oa{sv})")


def knob_int(k, v, lo, hi):
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise err(E_DBUS_INVALID, "knob %s: want an integer" % k)
    if isinstance(v, (str, dbus.Boolean)) or not lo <= n <= hi:
        raise err(E_DBUS_INVALID, "knob %s: want an integer %d..%d" % (k, lo, hi))
    return n


def knob_str(k, v, choices=None):
    if not isinstance(v, str):
        raise err(E_DBUS_INVALID, "knob %s: want a string" % k)
    if choices and v not in choices:
        raise err(E_DBUS_INVALID, "knob %s: want one of %s" % (k, "|".join(choices)))
    return str(v)


def knob_list(k, v):
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise err(E_DBUS_INVALID, "knob %s: want a list of strings" % k)
    return [str(x) for x in v]


KNOBS = {
    "imsi": "001010123456789", "mcc": None, "mnc": None, "operator": "Fake Telecom",
    "strength": 77, "status": "registered", "technology": "lte", "bearer": "lte",
    "sim": "ready", "contexts": 1, "apn": "internet", "protocol": "ip", "type": "hardware",
    "powered": False, "online": False, "manufacturer": "pathman", "model": "fake modem",
    "revision": "1.0", "serial": "356938035643809", "max_active": 2, "cm_stage": "sim",
    "roaming_allowed": False, "interface": "eth0", "method": "static",
    "address": "198.18.1.50", "netmask": "255.255.255.0", "gateway": "198.18.1.1",
    "dns": ["198.18.1.1"], "proxy": None, "ipv6_interface": None, "ipv6_address": "fd18:1::50",
    "ipv6_prefix": 64, "ipv6_gateway": "fd18:1::1", "ipv6_dns": ["fd18:1::1"],
    "settings": None, "ipv6_settings": None,
}


def parse_knobs(knobs):
    k = dict(KNOBS)
    for name, v in knobs.items():
        name = str(name)
        if name not in KNOBS:
            raise err(E_DBUS_INVALID, "unknown knob %s" % name)
        if name in ("strength", "ipv6_prefix"):
            k[name] = knob_int(name, v, 0, 255)
        elif name in ("contexts", "max_active"):
            k[name] = knob_int(name, v, 0, 256)
        elif name in ("powered", "online", "roaming_allowed"):
            if not isinstance(v, (bool, dbus.Boolean)):
                raise err(E_DBUS_INVALID, "knob %s: want a boolean" % name)
            k[name] = bool(v)
        elif name in ("dns", "ipv6_dns"):
            k[name] = knob_list(name, v)
        elif name in ("settings", "ipv6_settings"):
            if not isinstance(v, dict):
                raise err(E_DBUS_INVALID, "knob %s: want a{sv}" % name)
            k[name] = dbus.Dictionary(v, signature="sv")
        else:
            k[name] = knob_str(name, v, {"status": REG_STATUS, "sim": SIM_STATES,
                                         "protocol": PROTOCOLS, "method": ("static", "dhcp"),
                                         "cm_stage": ("sim", "online")}.get(name))
    if not re.fullmatch(r"[0-9]{6,15}", k["imsi"]):
        raise err(E_DBUS_INVALID, "knob imsi: want 6-15 digits")
    k["mcc"] = k["mcc"] if k["mcc"] is not None else k["imsi"][:3]
    k["mnc"] = k["mnc"] if k["mnc"] is not None else k["imsi"][3:5]
    if k["ipv6_interface"] is None:
        k["ipv6_interface"] = k["interface"]
    if k["online"]:
        k["powered"] = True
    return k


class Modem(OObj):
    def __init__(self, name, k):
        self.name = name
        self.k = k
        self.powered = False
        self.online = False
        self.lockdown = False
        self.busy = False            # a Powered/Online change under way
        self.devinfo = False         # Manufacturer/Model/Revision/Serial read (powered)
        self.sim_read = False        # IMSI read (SIM ready)
        self.have = [MODEM]          # Interfaces, in the order they appeared
        self.status = "unregistered"  # NetworkRegistration.Status as exported
        self.target = k["status"]    # what the network answers
        self.strength = k["strength"]
        self.attached = False
        self.attaching = False
        self.net_detached = False    # Detach() control
        self.cm_powered = True
        self.roaming_allowed = k["roaming_allowed"]
        self.gen = 0                 # bumped on power/online changes: stale steps stop
        self.contexts = {}           # id -> Context
        OObj.__init__(self, "/" + name)
        if not self.load():
            for _ in range(k["contexts"]):
                self.new_context("internet", k["apn"], k["protocol"])
        if k["powered"]:             # the start state, built without signals
            self.powered = True
            self.devinfo = True
            self.have.append(SIM)
            if k["sim"] == "ready":
                self.sim_read = True
                if k["cm_stage"] == "sim":
                    self.have.append(CM)
            if k["online"] and self.sim_read:
                self.online = True
                self.have.append(NETREG)
                if k["cm_stage"] == "online":
                    self.have.append(CM)
                self.status = self.target
                self.attached = self.want_attach()
        self.sync_context_export()

    def ifaces(self):
        return list(self.have)

    # ---- what oFono keeps per IMSI (its gprs settings file): contexts, CM Powered/Roaming
    def store_path(self):
        if not FAKE.state_dir:
            return None
        return os.path.join(FAKE.state_dir, self.k["imsi"] + ".json")

    def load(self):
        p = self.store_path()
        if p is None or not os.path.exists(p):
            return False
        with open(p) as f:
            st = json.load(f)
        self.cm_powered = bool(st.get("Powered", True))
        self.roaming_allowed = bool(st.get("RoamingAllowed", self.roaming_allowed))
        for cs in st.get("contexts", []):
            c = Context(self, int(cs["id"]), cs["Type"], cs["AccessPointName"], cs["Protocol"])
            for attr, key in Context.STORED:
                setattr(c, attr, cs[key])
            self.contexts[c.cid] = c
        return True

    def save(self):
        p = self.store_path()
        if p is None:
            return
        st = {"Powered": self.cm_powered, "RoamingAllowed": self.roaming_allowed,
              "contexts": [dict([("id", c.cid)] + [(key, getattr(c, attr))
                                                   for attr, key in Context.STORED])
                           for c in sorted(self.contexts.values(), key=lambda c: c.cid)]}
        os.makedirs(FAKE.state_dir, exist_ok=True)
        with open(p + ".tmp", "w") as f:
            json.dump(st, f, indent=1)
        os.replace(p + ".tmp", p)

    # ---- helpers
    def later(self, fn, *args, ms=None):
        gen = self.gen

        def run():
            if gen == self.gen and self.name in FAKE.modems:
                fn(*args)
            return False
        GLib.timeout_add(FAKE.step_ms if ms is None else ms, run)

    def prop(self, iface, name, value):
        FAKE.emit(self.path, iface, "PropertyChanged", "sv", name, value)

    def add_iface(self, iface):
        if iface not in self.have:
            self.have.append(iface)
            self.sync_context_export()
            self.interfaces_changed()

    def remove_iface(self, iface):
        if iface in self.have:
            self.have.remove(iface)
            self.sync_context_export()
            self.interfaces_changed()

    def interfaces_changed(self):
        self.prop(MODEM, "Interfaces", AS(self.have[1:]))
        self.prop(MODEM, "Features", self.features())

    def features(self):
        return AS([FEATURE[i] for i in self.have if i in FEATURE])

    def sync_context_export(self):
        for c in self.contexts.values():
            if CM in self.have:
                c.export()
            else:
                c.unexport()

    # ---- properties
    DEVINFO = ("Manufacturer", "Model", "Revision", "Serial")

    def modem_props(self):
        k = self.k
        d = {"Online": B(self.online), "Powered": B(self.powered),
             "Lockdown": B(self.lockdown), "Emergency": B(False),
             "Features": self.features(), "Interfaces": AS(self.have[1:]),
             "Type": S(k["type"])}
        if self.devinfo:
            d.update((n, S(k[n.lower()])) for n in self.DEVINFO)
        return D(d)

    def sim_props(self):
        sim = self.k["sim"]
        d = {"Present": B(sim != "absent"), "CardSlotCount": dbus.UInt32(1),
             "ActiveCardSlot": dbus.UInt32(1)}
        if sim == "absent":
            return D(d)
        d["CardIdentifier"] = S("8900101" + self.k["imsi"][-12:].rjust(12, "0"))
        if self.sim_read:
            d["SubscriberIdentity"] = S(self.k["imsi"])
            d["MobileCountryCode"] = S(self.k["mcc"])
            d["MobileNetworkCode"] = S(self.k["mnc"])
        d["SubscriberNumbers"] = AS([])
        d["PinRequired"] = S({"ready": "none"}.get(sim, sim))
        d["LockedPins"] = AS([] if sim == "ready" else [sim])
        d["Retries"] = dbus.Dictionary({"pin": dbus.Byte(3), "puk": dbus.Byte(10)},
                                       signature="sy")
        d["FixedDialing"] = B(False)
        d["BarredDialing"] = B(False)
        return D(d)

    def registered(self):
        return self.status in ("registered", "roaming")

    def netreg_props(self):
        d = {"Mode": S("auto"), "Status": S(self.status)}
        if self.registered():
            d.update(self.netreg_cell())
        return D(d)

    def netreg_cell(self):
        k = self.k
        return {"LocationAreaCode": dbus.UInt16(0xC3), "CellId": dbus.UInt32(0xA1B2),
                "Technology": S(k["technology"]), "Strength": dbus.Byte(self.strength),
                "Name": S(k["operator"]), "MobileCountryCode": S(k["mcc"]),
                "MobileNetworkCode": S(k["mnc"])}

    def cm_props(self):
        return D({"Attached": B(self.attached),
                  "Bearer": S(self.k["bearer"] if self.attached else "none"),
                  "Suspended": B(False), "RoamingAllowed": B(self.roaming_allowed),
                  "Powered": B(self.cm_powered)})

    # ---- org.ofono.Modem
    def h_Modem_GetProperties(self, call):
        return self.modem_props()

    def h_Modem_SetProperty(self, call, name, value):
        if name not in ("Powered", "Online", "Lockdown") or not isinstance(value, dbus.Boolean):
            raise OfonoError(E_INVALID)
        value = bool(value)
        if self.busy:
            raise OfonoError(E_INPROGRESS)
        if name == "Lockdown":
            if value == self.lockdown:
                return None
            call.reply()
            self.lockdown = value
            self.prop(MODEM, "Lockdown", B(value))
            if value and self.powered:
                self.power_off()
            return DEFER
        if name == "Powered":
            if value == self.powered:
                return None
            if value and self.lockdown:
                raise OfonoError(E_INUSE)
            call.reply()
            if value:
                self.power_on()
            else:
                self.power_off()
            return DEFER
        # Online
        if value == self.online:
            return None
        if value and (not self.powered or not self.sim_read):
            raise OfonoError(E_NOTAVAIL)
        call.reply()
        if value:
            self.go_online()
        else:
            self.go_offline()
        return DEFER

    def power_on(self):
        self.gen += 1
        self.powered = True
        self.prop(MODEM, "Powered", B(True))
        self.busy = True
        self.later(self.pre_sim)

    def pre_sim(self):
        self.busy = False
        self.add_iface(SIM)
        self.devinfo = True
        for n in self.DEVINFO:
            self.prop(MODEM, n, S(self.k[n.lower()]))
        if self.k["sim"] == "ready":
            self.later(self.read_imsi)

    def read_imsi(self):
        self.sim_read = True
        self.prop(SIM, "SubscriberIdentity", S(self.k["imsi"]))
        self.prop(SIM, "MobileCountryCode", S(self.k["mcc"]))
        self.prop(SIM, "MobileNetworkCode", S(self.k["mnc"]))
        if self.k["cm_stage"] == "sim":
            self.add_iface(CM)

    def go_online(self):
        self.gen += 1
        self.online = True
        self.prop(MODEM, "Online", B(True))
        self.status = "searching" if self.target in ("registered", "roaming") else self.target
        self.add_iface(NETREG)
        if self.k["cm_stage"] == "online":
            self.add_iface(CM)
        self.later(self.network_answers)

    def network_answers(self):
        self.set_status(self.target)

    def set_status(self, status):
        self.target = status
        if NETREG not in self.have or status == self.status:
            self.update_attach()
            return
        was = self.registered()
        self.status = status
        self.prop(NETREG, "Status", S(status))
        if self.registered() and not was:
            for name, v in self.netreg_cell().items():
                self.prop(NETREG, name, v)
        self.update_attach()

    def remove_ifaces(self, ifaces):
        """One Interfaces change for all of them (ofonod batches them) [r]."""
        gone = [i for i in ifaces if i in self.have]
        if gone:
            for i in gone:
                self.have.remove(i)
            self.sync_context_export()
            self.interfaces_changed()

    def go_offline(self):
        self.gen += 1
        self.online = False
        self.prop(MODEM, "Online", B(False))
        cm_goes = self.k["cm_stage"] == "online"
        self.detach_now(silent=cm_goes)
        self.status = "unregistered"
        self.remove_ifaces([NETREG] + ([CM] if cm_goes else []))

    def power_off(self):
        self.gen += 1
        self.busy = False
        self.powered = False
        self.prop(MODEM, "Powered", B(False))
        if self.online:
            self.online = False
            self.prop(MODEM, "Online", B(False))
        self.detach_now(silent=True)
        self.status = "unregistered"
        self.sim_read = False
        self.devinfo = False
        self.remove_ifaces([NETREG, CM, SIM])

    # ---- attach state
    def want_attach(self):
        return (CM in self.have and self.online and self.cm_powered and not self.net_detached
                and (self.status == "registered"
                     or self.status == "roaming" and self.roaming_allowed))

    def update_attach(self):
        if self.want_attach():
            if not self.attached and not self.attaching:
                self.attaching = True
                self.later(self.attach_done)
        else:
            self.detach_now()

    def attach_done(self):
        self.attaching = False
        if self.want_attach() and not self.attached:
            self.attached = True
            self.prop(CM, "Attached", B(True))
            if self.k["bearer"] != "none":
                self.prop(CM, "Bearer", S(self.k["bearer"]))

    def detach_now(self, silent=False):
        """Detached: contexts down, Attached false; silent: the ConnectionManager atom is
        about to go away (offline with cm_stage online, powered off): no signals [r]."""
        self.attaching = False
        for c in sorted(self.contexts.values(), key=lambda c: c.cid):
            c.network_down(silent)
        if self.attached:
            self.attached = False
            if CM in self.have and not silent:
                self.prop(CM, "Attached", B(False))
                if self.k["bearer"] != "none":
                    self.prop(CM, "Bearer", S("none"))

    # ---- org.ofono.SimManager / NetworkRegistration
    def h_SimManager_GetProperties(self, call):
        return self.sim_props()

    def h_NetworkRegistration_GetProperties(self, call):
        return self.netreg_props()

    # ---- org.ofono.ConnectionManager
    def h_ConnectionManager_GetProperties(self, call):
        return self.cm_props()

    def h_ConnectionManager_SetProperty(self, call, name, value):
        if name not in ("Powered", "RoamingAllowed") or not isinstance(value, dbus.Boolean):
            raise OfonoError(E_INVALID)
        value = bool(value)
        attr = {"Powered": "cm_powered", "RoamingAllowed": "roaming_allowed"}[name]
        if getattr(self, attr) == value:
            return None
        setattr(self, attr, value)
        self.save()
        self.prop(CM, name, B(value))
        call.reply()
        self.update_attach()
        return DEFER

    def h_ConnectionManager_GetContexts(self, call):
        return dbus.Array([dbus.Struct((dbus.ObjectPath(c.path), c.props()), signature="oa{sv}")
                           for c in sorted(self.contexts.values(), key=lambda c: c.cid)],
                          signature="(oa{sv})")

    def new_context(self, ctype, apn="", protocol="ip"):
        cid = 1
        while cid in self.contexts:
            cid += 1
        c = Context(self, cid, ctype, apn, protocol)
        self.contexts[cid] = c
        return c

    def h_ConnectionManager_AddContext(self, call, ctype):
        if ctype not in CONTEXT_TYPES:
            raise OfonoError(E_FORMAT)
        c = self.new_context(str(ctype))
        self.save()
        c.export()
        call.reply("o", dbus.ObjectPath(c.path))
        FAKE.emit(self.path, CM, "ContextAdded", "oa{sv}", dbus.ObjectPath(c.path), c.props())
        return DEFER

    def h_ConnectionManager_RemoveContext(self, call, path):
        c = next((c for c in self.contexts.values() if c.path == path), None)
        if c is None:
            raise OfonoError(E_NOTFOUND)
        if c.pending:
            raise OfonoError(E_INPROGRESS)

        def remove():
            c.unexport()
            c.gen += 1
            self.contexts.pop(c.cid, None)
            self.save()
            call.reply()
            FAKE.emit(self.path, CM, "ContextRemoved", "o", dbus.ObjectPath(c.path))
        if c.active:
            c.pending = "deactivate"
            c.later(lambda: (c.go_inactive(), remove()))
        else:
            remove()
        return DEFER

    def h_ConnectionManager_DeactivateAll(self, call):
        act = [c for c in self.contexts.values() if c.active and not c.pending]
        if any(c.pending for c in self.contexts.values()):
            raise OfonoError(E_INPROGRESS)
        if not act:
            return None
        for c in act:
            c.pending = "deactivate"

        def done():
            for c in sorted(act, key=lambda c: c.cid):
                if c.pending == "deactivate":
                    c.go_inactive()
            call.reply()
        GLib.timeout_add(FAKE.activation_ms, lambda: done() and False)
        return DEFER


def settings4(k, ctype):
    d = {"Interface": S(k["interface"]), "Method": S(k["method"])}
    if k["method"] == "static":
        d["Address"] = S(k["address"])
        d["Netmask"] = S(k["netmask"])
        if k["gateway"]:
            d["Gateway"] = S(k["gateway"])
        d["DomainNameServers"] = AS(k["dns"])
    if ctype == "mms" and k["proxy"]:
        d["Proxy"] = S(k["proxy"])
    return D(d)


def settings6(k):
    d = {"Interface": S(k["ipv6_interface"]), "Address": S(k["ipv6_address"]),
         "PrefixLength": dbus.Byte(k["ipv6_prefix"])}
    if k["ipv6_gateway"]:
        d["Gateway"] = S(k["ipv6_gateway"])
    d["DomainNameServers"] = AS(k["ipv6_dns"])
    return D(d)


class Context(OObj):
    TYPE_NAMES = {"internet": "Internet", "mms": "MMS", "wap": "WAP", "ims": "IMS",
                  "supl": "SUPL", "ia": "IA"}
    STORED = [("name", "Name"), ("ctype", "Type"), ("apn", "AccessPointName"),
              ("username", "Username"), ("password", "Password"), ("protocol", "Protocol"),
              ("auth", "AuthenticationMethod"), ("preferred", "Preferred"),
              ("msg_proxy", "MessageProxy"), ("msg_center", "MessageCenter")]

    def __init__(self, modem, cid, ctype, apn, protocol):
        self.modem = modem
        self.cid = cid
        self.ctype = ctype
        self.name = self.TYPE_NAMES[ctype]
        self.apn = apn
        self.username = ""
        self.password = ""
        self.protocol = protocol
        self.auth = "chap"
        self.preferred = False
        self.msg_proxy = ""
        self.msg_center = ""
        self.active = False
        self.pending = None          # "activate" | "deactivate" | "hung"
        self.pending_call = None
        self.fail_next = None
        self.no_reply_next = False
        self.raw4 = modem.k["settings"]
        self.raw6 = modem.k["ipv6_settings"]
        self.cur4 = D({})
        self.cur6 = D({})
        self.sig4 = self.sig6 = False   # Settings / IPv6.Settings signalled on activation
        self.gen = 0
        self.path = "%s/context%d" % (modem.path, cid)
        self.exported = False
        dbus.service.Object.__init__(self)   # exported while the modem has ConnectionManager

    def ifaces(self):
        return [CTX]

    def later(self, fn):
        gen = self.gen

        def run():
            if gen == self.gen and self.modem.contexts.get(self.cid) is self:
                fn()
            return False
        GLib.timeout_add(FAKE.activation_ms, run)

    def prop(self, name, value):
        FAKE.emit(self.path, CTX, "PropertyChanged", "sv", name, value)

    def props(self):
        d = {"Name": S(self.name), "Active": B(self.active), "Type": S(self.ctype),
             "AccessPointName": S(self.apn), "Protocol": S(self.protocol),
             "Username": S(self.username), "Password": S(self.password),
             "AuthenticationMethod": S(self.auth)}
        if self.ctype == "mms":
            d["MessageProxy"] = S(self.msg_proxy)
            d["MessageCenter"] = S(self.msg_center)
        d["Settings"] = self.cur4
        d["IPv6.Settings"] = self.cur6
        return D(d)

    def h_ConnectionContext_GetProperties(self, call):
        return self.props()

    def h_ConnectionContext_SetProperty(self, call, name, value):
        if self.no_reply_next:
            self.no_reply_next = False
            call.swallow()
            if name == "Active" and isinstance(value, dbus.Boolean) and not self.pending:
                self.pending = "hung"
            return DEFER
        strs = {"AccessPointName": "apn", "Type": "ctype", "Protocol": "protocol",
                "Name": "name", "Username": "username", "Password": "password",
                "AuthenticationMethod": "auth"}
        if self.ctype == "mms":
            strs.update({"MessageProxy": "msg_proxy", "MessageCenter": "msg_center"})
        if name == "Active":
            if not isinstance(value, dbus.Boolean):
                raise OfonoError(E_INVALID)
        elif name in strs:
            if not isinstance(value, dbus.String):
                raise OfonoError(E_INVALID)
        else:
            raise OfonoError(E_INVALID)
        if self.pending:
            raise OfonoError(E_INPROGRESS)
        if name == "Active":
            return self.set_active(call, bool(value))
        if self.active:
            raise OfonoError(E_INUSE)
        value = str(value)
        ok = {"AccessPointName": is_valid_apn(value),
              "Type": value in CONTEXT_TYPES, "Protocol": value in PROTOCOLS,
              "AuthenticationMethod": value in AUTH_METHODS, "Name": len(value) <= 127,
              "Username": len(value) <= 255, "Password": len(value) <= 255,
              "MessageProxy": len(value) <= 255, "MessageCenter": len(value) <= 255}[name]
        if not ok:
            raise OfonoError(E_FORMAT)
        if getattr(self, strs[name]) == value:
            return None
        call.reply()
        setattr(self, strs[name], value)
        self.modem.save()
        self.prop(name, S(value))
        return DEFER

    def set_active(self, call, value):
        m = self.modem
        if value == self.active:
            return None
        if value:
            if m.attaching:
                raise OfonoError(E_ATTACHING)
            if not m.attached:
                raise OfonoError(E_NOTATTACHED)
            busy = sum(1 for c in m.contexts.values() if c.active or c.pending)
            if busy >= m.k["max_active"]:
                raise OfonoError(E_NOTIMPL)
        self.pending = "activate" if value else "deactivate"
        self.pending_call = call
        fail, self.fail_next = (self.fail_next if value else None), \
            (None if value else self.fail_next)

        def done():
            self.pending = None
            self.pending_call = None
            if not value:
                call.reply()
                self.go_inactive()
            elif fail:
                call.error(fail, "activation failed (FailNext)")
            else:
                call.reply()
                self.go_active()
        self.later(done)
        return DEFER

    def go_active(self):
        k = self.modem.k
        four = self.protocol in ("ip", "dual")
        six = self.protocol in ("ipv6", "dual")
        self.cur4 = self.raw4 if self.raw4 is not None else \
            (settings4(k, self.ctype) if four else D({}))
        self.cur6 = self.raw6 if self.raw6 is not None else (settings6(k) if six else D({}))
        self.active = True
        # only the families it has settings for: Protocol ip -> no IPv6.Settings signal [r]
        self.sig4 = four or self.raw4 is not None
        self.sig6 = six or self.raw6 is not None
        if self.sig4:
            self.prop("Settings", self.cur4)
        if self.sig6:
            self.prop("IPv6.Settings", self.cur6)
        self.prop("Active", B(True))

    def go_inactive(self, silent=False):
        self.pending = None
        self.cur4 = D({})
        self.cur6 = D({})
        sig4, sig6 = self.sig4, self.sig6
        self.sig4 = self.sig6 = False
        if silent:
            self.active = False
            return
        if sig4:
            self.prop("Settings", self.cur4)
        if sig6:
            self.prop("IPv6.Settings", self.cur6)
        if self.active:
            self.active = False
            self.prop("Active", B(False))

    def network_down(self, silent=False):
        """The network (or a detach, or going offline) ends the context; silent: its
        object is going away with the ConnectionManager atom (no signals) [r]."""
        self.gen += 1
        call, was = self.pending_call, self.pending
        self.pending = None
        self.pending_call = None
        if was in ("activate", "hung"):
            if call is not None:
                call.error(E_FAILED)
        elif was == "deactivate" and call is not None:
            call.reply()
        if self.active or was == "deactivate":
            self.go_inactive(silent)


class Control(dbus.service.Object):
    def __init__(self):
        dbus.service.Object.__init__(self, FAKE.bus, CTL_PATH)

    def _message_cb(self, connection, message):
        want = CTL_SIGS.get(message.get_member())
        if message.get_interface() in (None, CTL) and want is not None \
                and (message.get_signature() or "") != want:
            connection.send_message(dbus.lowlevel.ErrorMessage(
                message, E_DBUS_INVALID, "want signature %s" % want))
            return
        try:
            return dbus.service.Object._message_cb(self, connection, message)
        except Exception as e:
            sys.stderr.write("fake_ofono: control error %r\n" % e)

    def modem(self, path):
        m = next((m for m in FAKE.modems.values() if m.path == path), None)
        if m is None:
            raise err(E_DBUS_INVALID, "no modem %s" % path)
        return m

    def context(self, path):
        for m in FAKE.modems.values():
            for c in m.contexts.values():
                if c.path == path:
                    return c
        raise err(E_DBUS_INVALID, "no context %s" % path)

    @dbus.service.method(CTL, in_signature="sa{sv}", out_signature="o")
    def AddModem(self, name, knobs):
        return dbus.ObjectPath(FAKE.add_modem(str(name), knobs).path)

    @dbus.service.method(CTL, in_signature="o", out_signature="")
    def RemoveModem(self, path):
        m = self.modem(path)
        m.gen += 1
        for c in m.contexts.values():
            c.gen += 1
            c.unexport()
        m.unexport()
        del FAKE.modems[m.name]
        FAKE.emit("/", MANAGER, "ModemRemoved", "o", dbus.ObjectPath(m.path))

    @dbus.service.method(CTL, in_signature="os", out_signature="")
    def SetRegistration(self, path, status):
        m = self.modem(path)
        if status not in REG_STATUS:
            raise err(E_DBUS_INVALID, "status: want one of " + "|".join(REG_STATUS))
        m.set_status(str(status))

    @dbus.service.method(CTL, in_signature="oy", out_signature="")
    def SetStrength(self, path, strength):
        m = self.modem(path)
        m.strength = int(strength)
        if NETREG in m.have and m.registered():
            m.prop(NETREG, "Strength", dbus.Byte(m.strength))

    @dbus.service.method(CTL, in_signature="o", out_signature="")
    def Detach(self, path):
        m = self.modem(path)
        m.net_detached = True
        m.update_attach()

    @dbus.service.method(CTL, in_signature="o", out_signature="")
    def Attach(self, path):
        m = self.modem(path)
        m.net_detached = False
        m.update_attach()

    @dbus.service.method(CTL, in_signature="os", out_signature="")
    def FailNext(self, path, name):
        c = self.context(path)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", name) \
                or len(name) > 255:
            raise err(E_DBUS_INVALID, "not a D-Bus error name: %s" % name)
        c.fail_next = str(name)

    @dbus.service.method(CTL, in_signature="oa{sv}", out_signature="")
    def SetSettings(self, path, settings):
        c = self.context(path)
        c.raw4 = dbus.Dictionary(settings, signature="sv")
        if c.active:
            c.cur4 = c.raw4
            c.prop("Settings", c.cur4)

    @dbus.service.method(CTL, in_signature="oa{sv}", out_signature="")
    def SetIPv6Settings(self, path, settings):
        c = self.context(path)
        c.raw6 = dbus.Dictionary(settings, signature="sv")
        if c.active:
            c.cur6 = c.raw6
            c.prop("IPv6.Settings", c.cur6)

    @dbus.service.method(CTL, in_signature="u", out_signature="")
    def SetActivationDelay(self, ms):
        FAKE.activation_ms = max(1, int(ms))

    @dbus.service.method(CTL, in_signature="o", out_signature="")
    def NoReplyNext(self, path):
        self.context(path).no_reply_next = True

    @dbus.service.method(CTL, in_signature="o", out_signature="")
    def DeactivateByNetwork(self, path):
        c = self.context(path)
        if not c.active and c.pending not in ("activate", "hung"):
            raise err(E_DBUS_INVALID, "context %s is not active" % path)
        c.network_down()

    @dbus.service.method(CTL, in_signature="", out_signature="")
    def Crash(self):
        GLib.idle_add(lambda: (FAKE.bus.flush(), os._exit(1)))

    @dbus.service.method(CTL, in_signature="", out_signature="as")
    def Trace(self):
        return dbus.Array(FAKE.trace, signature="s")

    @dbus.service.method(CTL, in_signature="", out_signature="")
    def ClearTrace(self):
        FAKE.trace.clear()


class Fake:
    def __init__(self, bus, step_ms, activation_ms, state_dir=None):
        self.bus = bus
        self.state_dir = state_dir
        self.step_ms = step_ms
        self.activation_ms = activation_ms
        self.modems = {}     # name -> Modem, in the order added
        self.trace = []

    def add_modem(self, name, knobs):
        if name == "":
            n = 0
            while "fake_%d" % n in self.modems:
                n += 1
            name = "fake_%d" % n
        if not ctl_path_ok(name) or name in self.modems or name == "net":
            raise err(E_DBUS_INVALID, "bad or used modem name %r" % name)
        m = Modem(name, parse_knobs(knobs))
        self.modems[name] = m
        self.emit("/", MANAGER, "ModemAdded", "oa{sv}", dbus.ObjectPath(m.path), m.modem_props())
        return m

    def trace_call(self, m):
        try:
            args = m.get_args_list()
        except Exception:
            args = ["?"]
        self.trace.append("call %s.%s %s %s" % (m.get_interface() or "", m.get_member(),
                                                 m.get_path(), brief(args)))

    def emit(self, path, iface, member, sig, *args):
        m = dbus.lowlevel.SignalMessage(path, iface, member)
        m.append(*args, signature=sig)
        self.bus.send_message(m)
        self.trace.append("signal %s.%s %s %s" % (iface, member, path, brief(list(args))))


# ---------------------------------------------------------------- the ctl client
SIMPLE = {"y": dbus.Byte, "b": dbus.Boolean, "n": dbus.Int16, "q": dbus.UInt16,
          "i": dbus.Int32, "u": dbus.UInt32, "x": dbus.Int64, "t": dbus.UInt64,
          "d": dbus.Double, "s": dbus.String, "o": dbus.ObjectPath, "g": dbus.Signature}


def typed(sig, v):
    """JSON value -> D-Bus value of signature sig."""
    if sig in SIMPLE:
        if sig in "ynqiuxt" and (isinstance(v, bool) or not isinstance(v, int)):
            raise ValueError("want an integer for %s: %r" % (sig, v))
        return SIMPLE[sig](v)
    if sig == "ay":
        return dbus.ByteArray(bytes.fromhex(v))
    if sig == "v":
        return from_json(v)
    if sig.startswith("a{") and sig.endswith("}"):
        ks, vs = split_sig(sig[2:-1])
        return dbus.Dictionary({typed(ks, k): typed(vs, x) for k, x in v.items()},
                               signature=ks + vs)
    if sig.startswith("a"):
        return dbus.Array([typed(sig[1:], x) for x in v], signature=sig[1:])
    raise ValueError("unsupported signature %s" % sig)


def from_json(v):
    """JSON value -> D-Bus value by its JSON type ({"@SIG": value} for another type)."""
    if isinstance(v, dict) and len(v) == 1 and next(iter(v)).startswith("@"):
        sig, x = next(iter(v.items()))
        return typed(sig[1:], x)
    if isinstance(v, bool):
        return dbus.Boolean(v)
    if isinstance(v, int):
        return dbus.Int32(v)
    if isinstance(v, float):
        return dbus.Double(v)
    if isinstance(v, str):
        return dbus.String(v)
    if isinstance(v, list):
        if all(isinstance(x, str) for x in v):
            return dbus.Array([dbus.String(x) for x in v], signature="s")
        return dbus.Array([from_json(x) for x in v], signature="v")
    if isinstance(v, dict):
        return dbus.Dictionary({str(k): from_json(x) for k, x in v.items()}, signature="sv")
    raise ValueError("cannot send %r" % (v,))


def plain(v):
    """D-Bus value -> JSON-able python value."""
    if isinstance(v, (dbus.ByteArray, bytes)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    return str(v)


def ctl_main(method, args):
    if method not in CTL_SIGS:
        sys.exit("ctl: unknown method %s (want one of %s)" % (method, " ".join(sorted(CTL_SIGS))))
    sigs = split_sig(CTL_SIGS[method])
    if len(sigs) != len(args):
        sys.exit("ctl %s: want %d args (%s)" % (method, len(sigs), CTL_SIGS[method] or "none"))
    try:
        vals = [typed(s, v if s in ("s", "o") else json.loads(v)) for s, v in zip(sigs, args)]
    except ValueError as e:
        sys.exit("ctl %s: bad argument: %s" % (method, e))
    addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    bus = dbus.bus.BusConnection(addr) if addr else dbus.SystemBus()
    obj = bus.get_object(SVC, CTL_PATH, introspect=False)
    try:
        res = obj.get_dbus_method(method, CTL)(*vals, signature=CTL_SIGS[method])
    except dbus.exceptions.DBusException as e:
        sys.exit("%s: %s" % (e.get_dbus_name(), e.get_dbus_message()))
    if res is not None:
        print(json.dumps(plain(res)))


def main():
    global FAKE
    if len(sys.argv) >= 2 and sys.argv[1] == "ctl":
        if len(sys.argv) < 3:
            sys.exit("usage: fake_ofono.py ctl METHOD [ARG...]")
        ctl_main(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bus", help="D-Bus address (default: $DBUS_SYSTEM_BUS_ADDRESS)")
    ap.add_argument("--modem", action="append", default=[],
                    help="JSON object: AddModem knobs plus \"name\" (repeatable)")
    ap.add_argument("--no-modem", action="store_true", help="start without modems")
    ap.add_argument("--step-ms", type=int, default=10)
    ap.add_argument("--activation-ms", type=int, default=20)
    ap.add_argument("--state-dir", help="keep contexts per IMSI here, across restarts")
    a = ap.parse_args()
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    addr = a.bus or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    if not addr:
        sys.exit("fake_ofono: no bus (--bus or DBUS_SYSTEM_BUS_ADDRESS)")
    bus = dbus.bus.BusConnection(addr)
    FAKE = Fake(bus, max(1, a.step_ms), max(1, a.activation_ms), a.state_dir)
    Manager()
    Control()
    specs = [json.loads(s) for s in a.modem]
    if not specs and not a.no_modem:
        specs = [{"name": "fake_0"}]
    for spec in specs:
        if not isinstance(spec, dict):
            sys.exit("fake_ofono: --modem wants a JSON object")
        name = str(spec.pop("name", ""))
        try:
            FAKE.add_modem(name, from_json(spec))
        except dbus.exceptions.DBusException as e:
            sys.exit("fake_ofono: --modem %s: %s" % (name, e.get_dbus_message()))
    name = dbus.service.BusName(SVC, bus, do_not_queue=True)
    sys.stderr.write("fake_ofono: %s on %s (%s)\n" % (name.get_name(), addr,
                                                      " ".join(FAKE.modems) or "no modems"))
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
