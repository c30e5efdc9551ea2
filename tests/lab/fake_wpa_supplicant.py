#!/usr/bin/python3
"""tests/lab/fake_wpa_supplicant.py - a fake wpa_supplicant (fi.w1.wpa_supplicant1) for the
namespace lab, which has no radios. Written from hostap's doc/dbus.doxygen, the observable
behaviour in tests/hwsim/test_dbus.py and measurements against the real wpa_supplicant 2.10
with -Dwired (see tests/lab/fake_wpa_compare.py); no hostap code is used.

It owns fi.w1.wpa_supplicant1 on the bus in DBUS_SYSTEM_BUS_ADDRESS (or --bus ADDRESS) and
exports the root object, one object per interface, BSS and network, with
org.freedesktop.DBus.Properties on each. Every property change goes out twice: the standard
org.freedesktop.DBus.Properties.PropertiesChanged and the deprecated <iface>.PropertiesChanged
(a{sv}) that ConnMan listens to. Nothing here touches the kernel: the network device named in
CreateInterface must exist (checked in /sys/class/net) and the client runs DHCP over it.

Test control, same bus name, object /net/pathman/test, interface net.pathman.test.FakeSupplicant:
  AddBss(s ifname, a{sv} props) -> o    props: ssid ay | ssid_hex s | ssid s, bssid s
        "aa:bb:cc:dd:ee:ff", signal n (dBm), frequency q (MHz), security s (open|wep|psk|
        sae|psk-sae|eap), passphrase s, identity s (eap), hidden b, beacon b. The BSS appears on the next scan
        (or at once with props "now": true). ifname "" = every interface (also later ones).
        A hidden BSS is found only by a scan naming its SSID (or a network with
        scan_ssid=1); with beacon true, scans before that list it with an empty SSID (a
        beacon caught in the dwell, as wpa_supplicant 2.10 lists a hidden hostapd AP on
        hwsim now and then [m: VM tier]); named, it is a second BSS object (bssid, SSID).
  RemoveBss(o bss)             the AP vanishes: BSSRemoved now; a connection to it is lost
                               (disconnected, DisconnectReason -4 = local inactivity)
  SetSignal(o bss, n dbm)      Signal changes (any int16, also absurd values); at -100 dBm or
                               below the BSS is out of range: a connection to it is lost
                               (DisconnectReason -4), nothing connects to it until it is
                               back above -100 (then the selected network reconnects)
  Roam(s ifname, o bss)        reassociate the current connection to another BSS
  FailNext(s ifname, s mode, i code)   modes: assoc-reject (AssocStatusCode code),
        auth-reject (AuthStatusCode code), driver-error (next SelectNetwork/Scan/
        Reassociate/Reconnect answers a D-Bus error: code 0 UnknownError, else
        Interface.ScanError for Scan), no-reply (the next method call on that interface
        is swallowed, never answered), 4way-timeout (handshake fails as with a wrong PSK)
  Crash()                      exit at once without cleanup (exit status 1)
  Trace() -> as                ordered log: "call IFACE.MEMBER PATH ARGS",
                               "signal IFACE.MEMBER PATH ARGS", "error NAME MEMBER PATH"
  ClearTrace()
  SetStepDelay(u ms)           delay between connection state steps (default 30 ms)

Behaviour (State values as Interface.PropertiesChanged shows them; [m] = measured here on
wpa_supplicant 2.10 -Dwired, [h] = hostap tests/hwsim/test_dbus.py / dbus.doxygen, [s] =
hostap source read for behaviour, [f] = the fake's own choice, documented):
  CreateInterface: InterfaceAdded with State=inactive, then State=disconnected [m]; no
    root PropertiesChanged for Interfaces, none for Networks on Add/RemoveNetwork [m];
    unknown Ifname -> UnknownError [m]; a BSS list appears only after a scan [h].
  Scan: reply, then {Scanning}, BSSAdded per new BSS, {BSSs,Scanning}, ScanDone(true);
    State unchanged, but disconnected with no network turns inactive [m: hwsim, VM tier]; a hidden BSS
    only by a scan naming its SSID (or a network with scan_ssid=1) [f]. -Dwired: ScanDone
    (false), {Scanning} [m].
  SelectNetwork: NetworkSelected, {Enabled} on the network [m], scanning (only when the
    last scan is over 5 s old), then
    open: authenticating, associating, associated, completed;
    PSK/SAE: authenticating, associating, associated, 4way_handshake, completed (no
    group handshake: the GTK comes in message 3/4) [m: hwsim + hostapd, VM tier]; CurrentBSS and
    CurrentNetwork change with authenticating [f]; CurrentAuthMode NONE/WPA2-PSK/SAE.
    -Dwired key_mgmt NONE: one {[ApScan,]CurrentAuthMode,CurrentBSS,State=completed} [m].
  wrong PSK: ... associated, 4way_handshake, {DisconnectReason=15} (the AP deauthenticates
    with 4-way handshake timeout after its msg 1/4 retries), disconnected [s: hostapd
    wpa_auth]; no automatic retry (the real one temp-disables the network) [f].
  wrong SAE password: authenticating, {AuthStatusCode=15} (hostapd answers a mismatching
    confirm with challenge failure), disconnected [s: hostapd ieee802_11.c].
  FailNext assoc-reject N: authenticating, associating, {AssocStatusCode=N}, disconnected;
    auth-reject N: authenticating, {AuthStatusCode=N}, disconnected [f].
  Disconnect / RemoveNetwork of the current one: {DisconnectReason=-3} (locally generated
    = negative) before the reply, {CurrentAuthMode,CurrentBSS,SessionLength,
    State=disconnected} after it; CurrentNetwork turns "/" unsignalled [m].
  Reconnect after Disconnect / Reassociate: as the real one -Dwired [m]; on radio
    Reassociate while completed walks authenticating..completed without disconnected [f].
  BSS loss (RemoveBss, or SetSignal <= -100 dBm) while connected: {DisconnectReason=-4}
    (beacon loss: local inactivity), [BSSRemoved,] {[BSSs,]CurrentAuthMode,CurrentBSS,
    SessionLength,State=disconnected}, then a scan and reconnect
    to another BSS of the SSID, or when one is added/back in range [f, reason per mac80211].
  Roam: authenticating, associating, associated, (4way_handshake,)
    completed with CurrentBSS = the new BSS, no disconnected in between [f: SME roam
    without FT; FT/offloaded roaming would stay completed].
  EAP networks: walk to associated and stay there (no EAP server) [f], unless the BSS has
    an identity: then a built-in server takes PEAP/TTLS with that identity and the BSS's
    passphrase as password, or TLS with client_cert and private_key set (not checked), and
    completes (4way_handshake, completed); other credentials end disconnected with
    DisconnectReason 23 (IEEE 802.1X authentication failed) [f]. WEP: completes
    whatever the key (as WEP does) [f]. BSSes never expire by themselves [f].
  Errors: bad signature -> org.freedesktop.DBus.Error.InvalidArgs (no text); bad
    AddNetwork values -> NetworkAdded, NetworkRemoved, then that same error [m]; Get of an
    unknown property / Set of a read-only one -> DBus.Error.InvalidArgs, Set of a wrong
    type -> DBus.Error.Failed [m, h]; Disconnect/Reattach unconnected -> NotConnected,
    unknown network -> NetworkUnknown, foreign path -> InvalidArgs, SignalPoll unconnected
    -> DBus.Error.Failed "Failed to read signal" [m].

Startup: --bsses FILE (JSON list of AddBss prop dicts, ssid as "ssid" text or "ssid_hex",
plus optional "ifname"), --step-ms N, --bus ADDRESS.
"""
import argparse
import hashlib
import json
import os
import re
import sys
import time

import dbus
import dbus.lowlevel
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

SVC = "fi.w1.wpa_supplicant1"
ROOT = "/fi/w1/wpa_supplicant1"
IF_IFACE = SVC + ".Interface"
IF_BSS = SVC + ".BSS"
IF_NET = SVC + ".Network"
PROPS = dbus.PROPERTIES_IFACE
CTL = "net.pathman.test.FakeSupplicant"
CTL_PATH = "/net/pathman/test"

E_UNKNOWN = SVC + ".UnknownError"
E_INVALID = SVC + ".InvalidArgs"
E_EXISTS = SVC + ".InterfaceExists"
E_IFUNKNOWN = SVC + ".InterfaceUnknown"
E_NOTCONN = SVC + ".NotConnected"
E_NETUNKNOWN = SVC + ".NetworkUnknown"
E_SCAN = IF_IFACE + ".ScanError"
E_DBUS_INVALID = "org.freedesktop.DBus.Error.InvalidArgs"
E_DBUS_FAILED = "org.freedesktop.DBus.Error.Failed"
BAD_ARGS = "Did not receive correct message arguments."

# Input signatures checked before dispatch: a call with other argument types is answered
# org.freedesktop.DBus.Error.InvalidArgs, as wpa_supplicant's method dispatcher does.
SIGS = {
    (SVC, "CreateInterface"): "a{sv}", (SVC, "RemoveInterface"): "o",
    (SVC, "GetInterface"): "s",
    (IF_IFACE, "Scan"): "a{sv}", (IF_IFACE, "Disconnect"): "", (IF_IFACE, "AddNetwork"): "a{sv}",
    (IF_IFACE, "RemoveNetwork"): "o", (IF_IFACE, "RemoveAllNetworks"): "",
    (IF_IFACE, "SelectNetwork"): "o", (IF_IFACE, "Reassociate"): "", (IF_IFACE, "Reattach"): "",
    (IF_IFACE, "Reconnect"): "", (IF_IFACE, "SignalPoll"): "", (IF_IFACE, "FlushBSS"): "u",
    (IF_IFACE, "AbortScan"): "", (IF_IFACE, "AutoScan"): "s", (IF_IFACE, "NetworkReply"): "oss",
    (IF_IFACE, "EAPLogoff"): "", (IF_IFACE, "EAPLogon"): "",
    (PROPS, "Get"): "ss", (PROPS, "GetAll"): "s", (PROPS, "Set"): "ssv",
    (CTL, "AddBss"): "sa{sv}", (CTL, "RemoveBss"): "o", (CTL, "SetSignal"): "on",
    (CTL, "Roam"): "so", (CTL, "FailNext"): "ssi", (CTL, "Crash"): "", (CTL, "Trace"): "",
    (CTL, "ClearTrace"): "", (CTL, "SetStepDelay"): "u",
}

NETWORK_KEYS = {
    "ssid", "scan_ssid", "frequency", "bgscan", "mode", "key_mgmt", "psk", "sae_password",
    "ieee80211w", "proto", "pairwise", "group", "group_mgmt", "auth_alg", "wep_key0", "wep_key1",
    "wep_key2", "wep_key3", "wep_tx_keyidx", "eap", "identity", "anonymous_identity", "password",
    "ca_cert", "client_cert", "private_key", "private_key_passwd", "subject_match",
    "altsubject_match", "domain_suffix_match", "domain_match", "phase1", "phase2", "priority",
    "scan_freq", "freq_list", "bssid", "disabled", "id_str", "mem_only_psk", "eapol_flags",
    "ignore_broadcast_ssid", "beacon_int", "sae_pwe", "mac_addr", "bssid_hint",
}

OUT_OF_RANGE_DBM = -100   # SetSignal to this or lower: the AP is out of range (unusable)

STATE_ORDER = ["disconnected", "inactive", "scanning", "authenticating", "associating",
               "associated", "4way_handshake", "group_handshake", "completed"]

FAKE = None   # the Fake singleton

# Signals per interface, for Introspect (they are sent with low-level messages)
SIGNALS = {
    SVC: [("InterfaceAdded", "path:o properties:a{sv}"), ("InterfaceRemoved", "path:o"),
          ("PropertiesChanged", "properties:a{sv}")],
    IF_IFACE: [("ScanDone", "success:b"), ("BSSAdded", "path:o properties:a{sv}"),
               ("BSSRemoved", "path:o"), ("NetworkAdded", "path:o properties:a{sv}"),
               ("NetworkRemoved", "path:o"), ("NetworkSelected", "path:o"),
               ("PropertiesChanged", "properties:a{sv}"), ("StaAuthorized", "name:s"),
               ("StaDeauthorized", "name:s"), ("EAP", "status:s parameter:s")],
    IF_BSS: [("PropertiesChanged", "properties:a{sv}")],
    IF_NET: [("PropertiesChanged", "properties:a{sv}")],
}


def sig_of(v):
    """The D-Bus signature of a value built with dbus-python's types."""
    if isinstance(v, dbus.Boolean):
        return "b"
    for typ, sg in ((dbus.Int16, "n"), (dbus.UInt16, "q"), (dbus.Int32, "i"), (dbus.UInt32, "u"),
                    (dbus.Int64, "x"), (dbus.UInt64, "t"), (dbus.Byte, "y"), (dbus.Double, "d"),
                    (dbus.ObjectPath, "o"), (dbus.Signature, "g"), (dbus.String, "s")):
        if isinstance(v, typ):
            return sg
    if isinstance(v, dbus.ByteArray):
        return "ay"
    if isinstance(v, dbus.Dictionary):
        return "a{%s}" % (v.signature or "sv")
    if isinstance(v, dbus.Array):
        return "a" + (v.signature or "v")
    return "v"


def err(name, text=""):
    return dbus.exceptions.DBusException(text, name=name)


def brief(v, depth=0):
    """A short, stable text form of a D-Bus value for the trace."""
    if isinstance(v, (dbus.ByteArray, bytes)):
        return "0x" + bytes(v).hex() if v else "0x"
    if isinstance(v, dbus.Array) and v.signature == "y":
        return "0x" + bytes(int(b) for b in v).hex()
    if isinstance(v, dict):
        if depth > 1:
            return "{...}"
        return "{" + ",".join("%s=%s" % (k, brief(v[k], depth + 1)) for k in sorted(v)) + "}"
    if isinstance(v, (list, tuple)):
        if len(v) > 8:
            return "[%d items]" % len(v)
        return "[" + ",".join(brief(x, depth + 1) for x in v) + "]"
    if isinstance(v, dbus.Boolean):
        return "true" if v else "false"
    return str(v)


def ay(b):
    return dbus.ByteArray(bytes(b))


def mac_bytes(s):
    m = re.fullmatch(r"([0-9a-fA-F]{2})(?::([0-9a-fA-F]{2})){5}", s or "")
    if not m:
        raise err(E_INVALID, "bssid must look like aa:bb:cc:dd:ee:ff")
    return bytes(int(x, 16) for x in s.split(":"))


def to_bytes(v):
    """ay / s argument -> bytes, or None."""
    if isinstance(v, (dbus.ByteArray, bytes)):
        return bytes(v)
    if isinstance(v, dbus.Array) and (v.signature == "y" or not v):
        return bytes(int(b) for b in v)
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    return None


# Capabilities.Modes of every interface (--modes); hwsim radios under the real one say these.
MODES = ["infrastructure", "ad-hoc", "ap"]

class Exported(dbus.service.Object):
    """An object with wpa_supplicant-style org.freedesktop.DBus.Properties for one interface."""
    iface_name = None

    def __init__(self, path):
        self.path = path
        self.props = {}      # name -> (getter, setter or None)
        self.dirty = []
        self.flush_src = None
        dbus.service.Object.__init__(self, FAKE.bus, path)

    def owner_ifc(self):   # the Interface object this belongs to (for FailNext no-reply)
        return None

    def _message_cb(self, connection, message):
        if isinstance(message, dbus.lowlevel.MethodCallMessage):
            FAKE.trace_call(message)
            ifc = self.owner_ifc()
            if ifc is not None and ifc.fail_take("no-reply"):
                FAKE.trace.append("swallowed %s %s" % (message.get_member(), message.get_path()))
                return
            want = SIGS.get((message.get_interface(), message.get_member()))
            if want is None and message.get_interface() is None:
                for (i, m), s in SIGS.items():
                    if m == message.get_member():
                        want = s
                        break
            if want is not None and (message.get_signature() or "") != want:
                # no message text, as wpa_supplicant's dispatcher answers a bad signature
                self._reply_error(connection, message, E_DBUS_INVALID, None)
                return
        try:
            return dbus.service.Object._message_cb(self, connection, message)
        except Exception as e:   # never die on a client's input
            sys.stderr.write("fake: error handling %s: %r\n" % (message.get_member(), e))

    def _reply_error(self, connection, message, name, text):
        FAKE.trace.append("error %s %s %s" % (name, message.get_member(), message.get_path()))
        if not message.get_no_reply():
            connection.send_message(dbus.lowlevel.ErrorMessage(message, name, text))

    @dbus.service.method(dbus.INTROSPECTABLE_IFACE, in_signature="", out_signature="s",
                         path_keyword="object_path", connection_keyword="connection")
    def Introspect(self, object_path, connection):
        """dbus-python's XML plus this object's properties and signals."""
        xml = dbus.service.Object.Introspect(self, object_path, connection)
        extra = ""
        for name in self.props:
            try:
                sg = sig_of(self.prop_value(name))
            except Exception:
                sg = "v"
            extra += '    <property name="%s" type="%s" access="%s"/>\n' % (
                name, sg, "readwrite" if self.props[name][1] else "read")
        for name, args in SIGNALS.get(self.iface_name, []):
            extra += '    <signal name="%s">\n' % name + "".join(
                '      <arg name="%s" type="%s"/>\n' % tuple(a.split(":", 1))
                for a in args.split()) + "    </signal>\n"
        tag = '<interface name="%s">\n' % self.iface_name
        if tag in xml:
            return xml.replace(tag, tag + extra, 1)
        return xml.replace("</node>", "  " + tag + extra + "  </interface>\n</node>", 1)

    # --- properties
    def prop_value(self, name):
        return self.props[name][0]()

    def all_props(self):
        return dbus.Dictionary({k: self.prop_value(k) for k in self.props}, signature="sv")

    def changed(self, *names):
        """Mark properties changed; they go out together when the main loop is next idle."""
        for n in names:
            if n not in self.dirty:
                self.dirty.append(n)
        if self.flush_src is None:
            self.flush_src = GLib.idle_add(self.flush)

    def flush(self):
        if self.flush_src is not None:
            GLib.source_remove(self.flush_src)
        self.flush_src = None
        if not self.dirty or not FAKE.exported(self):
            self.dirty = []
            return False
        d = dbus.Dictionary({n: self.prop_value(n) for n in self.dirty}, signature="sv")
        self.dirty = []
        FAKE.emit(self.path, PROPS, "PropertiesChanged", "sa{sv}as",
                  self.iface_name, d, dbus.Array([], signature="s"))
        FAKE.emit(self.path, self.iface_name, "PropertiesChanged", "a{sv}", d)
        return False

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, iface, name):
        if iface != self.iface_name or name not in self.props:
            raise err(E_DBUS_INVALID, "No such property")
        return self.prop_value(name)

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        if iface != self.iface_name:
            return dbus.Dictionary({}, signature="sv")
        return self.all_props()

    @dbus.service.method(PROPS, in_signature="ssv", out_signature="")
    def Set(self, iface, name, value):
        if iface != self.iface_name or name not in self.props:
            raise err(E_DBUS_INVALID, "No such property")
        setter = self.props[name][1]
        if setter is None:
            raise err(E_DBUS_INVALID, "Property is read-only")
        setter(value)


class Root(Exported):
    iface_name = SVC

    def __init__(self):
        Exported.__init__(self, ROOT)
        self.debug_level = "info"
        self.debug_ts = False
        self.debug_keys = False
        self.country = ""
        self.props = {
            "DebugLevel": (lambda: dbus.String(self.debug_level), self.set_debug_level),
            "DebugTimestamp": (lambda: dbus.Boolean(self.debug_ts), self.set_bool("debug_ts")),
            "DebugShowKeys": (lambda: dbus.Boolean(self.debug_keys), self.set_bool("debug_keys")),
            "Interfaces": (lambda: dbus.Array([i.path for i in FAKE.ifaces.values()], signature="o"), None),
            "EapMethods": (lambda: dbus.Array(["MD5", "TLS", "MSCHAPV2", "PEAP", "TTLS", "GTC", "OTP",
                                              "SIM", "AKA", "AKA'", "PWD"], signature="s"), None),
            "Capabilities": (lambda: dbus.Array(["ap", "ibss-rsn", "p2p", "interworking", "mesh",
                                                "sae", "owe"], signature="s"), None),
            "WFDIEs": (lambda: dbus.ByteArray(b""), None),
        }

    def set_bool(self, attr):
        def s(v):
            if not isinstance(v, dbus.Boolean):
                raise err(E_DBUS_FAILED, "wrong property type")
            setattr(self, attr, bool(v))
        return s

    def set_debug_level(self, v):
        if not isinstance(v, dbus.String):
            raise err(E_DBUS_FAILED, "wrong property type")
        if v not in ("msgdump", "debug", "info", "warning", "error", "excessive"):
            raise err(E_DBUS_FAILED, "wrong debug level value")
        self.debug_level = str(v)
        self.changed("DebugLevel")

    @dbus.service.method(SVC, in_signature="a{sv}", out_signature="o")
    def CreateInterface(self, args):
        ifname = args.get("Ifname")
        if not isinstance(ifname, str) or not ifname:
            raise err(E_INVALID, BAD_ARGS)
        for k, v in args.items():
            if k in ("Ifname", "Driver", "BridgeIfname", "ConfigFile") and not isinstance(v, str):
                raise err(E_INVALID, BAD_ARGS)
        if str(ifname) in FAKE.ifaces:
            raise err(E_EXISTS, "wpa_supplicant already controls this interface.")
        driver = str(args.get("Driver", "nl80211"))
        if "/" in ifname or not os.path.exists("/sys/class/net/" + ifname) or \
                driver.split(",")[0] not in ("nl80211", "wext", "wired", "none", ""):
            raise err(E_UNKNOWN, "wpa_supplicant couldn't grab this interface.")
        ifc = Iface(str(ifname), driver, str(args.get("BridgeIfname", "")))
        FAKE.ifaces[ifc.ifname] = ifc
        for spec in FAKE.pending_bsses:
            if spec.get("ifname", "") in ("", ifc.ifname):
                ifc.add_bss(spec)
        FAKE.emit(ROOT, SVC, "InterfaceAdded", "oa{sv}", ifc.path, ifc.all_props())
        GLib.idle_add(ifc.set_state, "disconnected")   # inactive -> disconnected, as measured
        return dbus.ObjectPath(ifc.path)

    @dbus.service.method(SVC, in_signature="o", out_signature="")
    def RemoveInterface(self, path):
        ifc = next((i for i in FAKE.ifaces.values() if i.path == path), None)
        if ifc is None:
            raise err(E_IFUNKNOWN, "wpa_supplicant knows nothing about this interface.")
        ifc.destroy()
        del FAKE.ifaces[ifc.ifname]
        FAKE.emit(ROOT, SVC, "InterfaceRemoved", "o", ifc.path)

    @dbus.service.method(SVC, in_signature="s", out_signature="o")
    def GetInterface(self, ifname):
        ifc = FAKE.ifaces.get(str(ifname))
        if ifc is None:
            raise err(E_IFUNKNOWN, "wpa_supplicant knows nothing about this interface.")
        return dbus.ObjectPath(ifc.path)


SECURITIES = ("open", "wep", "psk", "sae", "psk-sae", "eap")


def rsn_ie(security):
    akm = {"psk": [2], "sae": [8], "psk-sae": [2, 8], "eap": [1]}[security]
    caps = {"sae": 0xC0, "psk-sae": 0x80}.get(security, 0)
    body = bytes([1, 0]) + bytes([0, 0x0F, 0xAC, 4]) + bytes([1, 0, 0, 0x0F, 0xAC, 4])
    body += bytes([len(akm), 0]) + b"".join(bytes([0, 0x0F, 0xAC, a]) for a in akm)
    body += bytes([caps, 0])
    return bytes([48, len(body)]) + body


class Bss(Exported):
    iface_name = IF_BSS

    def __init__(self, ifc, bss_id, spec):
        self.ifc = ifc
        self.ssid = spec["ssid"]
        self.bssid = spec["bssid"]
        self.signal = spec["signal"]
        self.freq = spec["frequency"]
        self.security = spec["security"]
        self.passphrase = spec["passphrase"]
        self.hidden = spec["hidden"]
        self.spec = spec
        self.seen = time.monotonic()
        Exported.__init__(self, "%s/BSSs/%d" % (ifc.path, bss_id))
        self.props = {
            "SSID": (lambda: ay(self.ssid), None),
            "BSSID": (lambda: ay(self.bssid), None),
            "Privacy": (lambda: dbus.Boolean(self.security != "open"), None),
            "Mode": (lambda: dbus.String("infrastructure"), None),
            "Signal": (lambda: dbus.Int16(self.signal), None),
            "Frequency": (lambda: dbus.UInt16(self.freq), None),
            "Rates": (lambda: dbus.Array([54000000, 48000000, 36000000, 24000000, 18000000,
                                          12000000, 9000000, 6000000], signature="u"), None),
            "WPA": (lambda: dbus.Dictionary({"KeyMgmt": dbus.Array([], signature="s"),
                                             "Pairwise": dbus.Array([], signature="s")},
                                            signature="sv"), None),
            "RSN": (self.rsn, None),
            "WPS": (lambda: dbus.Dictionary({"Type": dbus.String("")}, signature="sv"), None),
            "IEs": (lambda: ay(self.ies()), None),
            "Age": (lambda: dbus.UInt32(int(time.monotonic() - self.seen)), None),
        }

    def owner_ifc(self):
        return self.ifc

    def in_range(self):
        return self.signal > OUT_OF_RANGE_DBM

    def key_mgmt(self):
        return {"open": [], "wep": [], "psk": ["wpa-psk"], "sae": ["sae"],
                "psk-sae": ["wpa-psk", "sae"], "eap": ["wpa-eap"]}[self.security]

    def rsn(self):
        if self.security in ("open", "wep"):
            return dbus.Dictionary({"KeyMgmt": dbus.Array([], signature="s"),
                                    "Pairwise": dbus.Array([], signature="s")}, signature="sv")
        d = {"KeyMgmt": dbus.Array(self.key_mgmt(), signature="s"),
             "Pairwise": dbus.Array(["ccmp"], signature="s"), "Group": dbus.String("ccmp")}
        if self.security in ("sae", "psk-sae"):
            d["MgmtGroup"] = dbus.String("aes128cmac")
        return dbus.Dictionary(d, signature="sv")

    def ies(self):
        ie = bytes([0, len(self.ssid)]) + self.ssid
        ie += bytes([1, 8, 0x8C, 0x12, 0x98, 0x24, 0xB0, 0x48, 0x60, 0x6C])
        if self.freq < 3000:
            ie += bytes([3, 1, max(1, min(14, (self.freq - 2407) // 5))])
        if self.security not in ("open", "wep"):
            ie += rsn_ie(self.security)
        return ie


class Network(Exported):
    iface_name = IF_NET

    def __init__(self, ifc, net_id, conf):
        self.ifc = ifc
        self.net_id = net_id
        self.conf = conf       # key -> python value (ssid: bytes)
        self.enabled = False
        Exported.__init__(self, "%s/Networks/%d" % (ifc.path, net_id))
        self.props = {
            "Properties": (self.properties, self.set_properties),
            "Enabled": (lambda: dbus.Boolean(self.enabled), self.set_enabled),
        }

    def owner_ifc(self):
        return self.ifc

    def properties(self):
        d = {}
        for k, v in self.conf.items():
            if k == "ssid":
                s = v.decode("utf-8", "replace")
                d[k] = '"%s"' % s if v.isascii() and v.decode().isprintable() and v else v.hex()
            elif k in ("psk", "password", "sae_password", "wep_key0", "wep_key1", "wep_key2",
                       "wep_key3", "private_key_passwd"):
                continue    # secrets are left out (measured on 2.10)
            elif isinstance(v, bytes):
                d[k] = v.hex()
            elif isinstance(v, str) and k in ("identity", "anonymous_identity", "ca_cert",
                                              "client_cert", "private_key", "id_str", "bgscan"):
                d[k] = '"%s"' % v
            else:
                d[k] = str(v)
        d["disabled"] = "0" if self.enabled else "1"
        return dbus.Dictionary({k: dbus.String(v) for k, v in d.items()}, signature="sv")

    def set_properties(self, v):
        if not isinstance(v, dict):
            raise err(E_DBUS_FAILED, "wrong property type")
        self.conf.update(parse_network(v))
        self.changed("Properties")

    def set_enabled(self, v):
        if not isinstance(v, dbus.Boolean):
            raise err(E_DBUS_FAILED, "wrong property type")
        self.enabled = bool(v)
        self.changed("Enabled")
        if self.enabled and self.ifc.cur_net is None:
            self.ifc.want_net = self
            GLib.idle_add(lambda: self.ifc.try_autoconnect() and False)

    def key_mgmts(self):
        return str(self.conf.get("key_mgmt", "WPA-PSK IEEE8021X")).split()


def parse_network(args):
    conf = {}
    for k, v in args.items():
        k = str(k)
        if k not in NETWORK_KEYS:
            raise err(E_INVALID, "invalid message format")
        if k == "ssid":
            b = to_bytes(v)
            if b is None or len(b) > 32:
                raise err(E_INVALID, "invalid message format")
            conf[k] = b
        elif k == "psk":
            if isinstance(v, (dbus.ByteArray, dbus.Array)):
                b = to_bytes(v)
                if b is None or len(b) != 32:
                    raise err(E_INVALID, "invalid message format")
                conf[k] = b.hex()
            elif isinstance(v, str):
                if not (8 <= len(v) <= 63 or re.fullmatch(r"[0-9a-fA-F]{64}", v)):
                    raise err(E_INVALID, "invalid message format")
                conf[k] = str(v)
            else:
                raise err(E_INVALID, "invalid message format")
        elif isinstance(v, (dbus.ByteArray, dbus.Array)):
            b = to_bytes(v)
            if b is None or not b:
                raise err(E_INVALID, "invalid message format")
            conf[k] = b
        elif isinstance(v, (dbus.Int32, dbus.UInt32, dbus.Int16, dbus.UInt16, dbus.Int64,
                            dbus.UInt64, dbus.Byte)):
            if isinstance(v, dbus.Byte):
                raise err(E_INVALID, "invalid message format")
            conf[k] = int(v)
        elif isinstance(v, dbus.Boolean):
            conf[k] = int(bool(v))
        elif isinstance(v, str):
            if k == "key_mgmt":
                for t in v.split():
                    if t not in ("NONE", "WPA-PSK", "WPA-EAP", "IEEE8021X", "SAE", "FT-PSK",
                                 "FT-SAE", "WPA-PSK-SHA256", "WPA-EAP-SHA256", "OWE", "FT-EAP"):
                        raise err(E_INVALID, "invalid message format")
            conf[k] = str(v)
        else:
            raise err(E_INVALID, "invalid message format")
    return conf


def compatible(net, bss):
    km = net.key_mgmts()
    has_wep = any(("wep_key%d" % i) in net.conf for i in range(4))
    if bss.security == "open":
        return "NONE" in km and not has_wep
    if bss.security == "wep":
        return "NONE" in km and has_wep
    if bss.security == "psk":
        return any(t in km for t in ("WPA-PSK", "FT-PSK", "WPA-PSK-SHA256"))
    if bss.security == "sae":
        return any(t in km for t in ("SAE", "FT-SAE"))
    if bss.security == "psk-sae":
        return any(t in km for t in ("WPA-PSK", "SAE", "FT-PSK", "FT-SAE", "WPA-PSK-SHA256"))
    if bss.security == "eap":
        return any(t in km for t in ("WPA-EAP", "IEEE8021X", "FT-EAP", "WPA-EAP-SHA256"))
    return False


def psk_ok(net, bss):
    given = net.conf.get("psk", net.conf.get("sae_password"))
    if given is None:
        return False
    if re.fullmatch(r"[0-9a-fA-F]{64}", given):
        want = hashlib.pbkdf2_hmac("sha1", bss.passphrase.encode(), bss.ssid, 4096, 32).hex()
        return given.lower() == want
    return given == bss.passphrase


class Iface(Exported):
    iface_name = IF_IFACE

    def __init__(self, ifname, driver, bridge):
        self.ifname = ifname
        self.driver = driver
        self.bridge = bridge
        self.state = "inactive"
        self.scanning = False
        self.ap_scan = 1
        self.bsses = {}        # path -> Bss (visible, i.e. found by a scan)
        self.unseen = []       # specs added by control, not yet found by a scan
        self.nets = {}         # path -> Network
        self.next_bss = 0
        self.next_net = 0
        self.cur_bss = None
        self.cur_net = None
        self.want_net = None   # selected network, reconnected to when a BSS appears
        self.disc_reason = 0
        self.assoc_status = 0
        self.auth_status = 0
        self.country = ""
        self.gen = 0           # bumps cancel a running connection walk
        self.fail = []         # [(mode, code)]
        self.user_disconnected = False
        self.last_auth = "INACTIVE"
        self.since = None      # when the last connection completed (SessionLength)
        Exported.__init__(self, "%s/Interfaces/%d" % (ROOT, FAKE.next_if))
        FAKE.next_if += 1
        o = lambda p: dbus.ObjectPath(p.path if p else "/")
        self.props = {
            "Capabilities": (self.capabilities, None),
            "State": (lambda: dbus.String(self.state), None),
            "Scanning": (lambda: dbus.Boolean(self.scanning), None),
            "ApScan": (lambda: dbus.UInt32(self.ap_scan), self.set_ap_scan),
            "BSSExpireAge": (lambda: dbus.UInt32(180), self.ignore_set("u")),
            "BSSExpireCount": (lambda: dbus.UInt32(2), self.ignore_set("u")),
            "Country": (lambda: dbus.String(self.country), self.set_country),
            "Ifname": (lambda: dbus.String(self.ifname), None),
            "Driver": (lambda: dbus.String(self.driver), None),
            "BridgeIfname": (lambda: dbus.String(self.bridge), None),
            "ConfigFile": (lambda: dbus.String(""), None),
            "CurrentBSS": (lambda: o(self.cur_bss), None),
            "CurrentNetwork": (lambda: o(self.cur_net), None),
            "CurrentAuthMode": (self.auth_mode, None),
            "Blobs": (lambda: dbus.Dictionary({}, signature="say"), None),
            "BSSs": (lambda: dbus.Array(list(self.bsses), signature="o"), None),
            "Networks": (lambda: dbus.Array(list(self.nets), signature="o"), None),
            "FastReauth": (lambda: dbus.Boolean(True), self.ignore_set("b")),
            "ScanInterval": (lambda: dbus.Int32(5), self.ignore_set("i")),
            "DisconnectReason": (lambda: dbus.Int32(self.disc_reason), None),
            "SessionLength": (lambda: dbus.UInt32(int(time.monotonic() - self.since)
                                                  if self.since else 0), None),
            "AuthStatusCode": (lambda: dbus.Int32(self.auth_status), None),
            "AssocStatusCode": (lambda: dbus.Int32(self.assoc_status), None),
        }

    def owner_ifc(self):
        return self

    def capabilities(self):
        s = lambda *x: dbus.Array(list(x), signature="s")
        return dbus.Dictionary({
            "Pairwise": s("ccmp", "tkip", "none"), "Group": s("ccmp", "tkip"),
            "GroupMgmt": s("aes-128-cmac"),
            "KeyMgmt": s("none", "ieee8021x", "wpa-eap", "wpa-ft-eap", "wpa-eap-sha256",
                         "wpa-psk", "wpa-ft-psk", "wpa-psk-sha256", "wps", "sae"),
            "Protocol": s("rsn", "wpa"), "AuthAlg": s("open", "shared", "leap"),
            "Scan": s("active", "passive", "ssid"), "Modes": s(*MODES),
            "MaxScanSSID": dbus.Int32(16)}, signature="sv")

    def auth_mode(self):
        if self.cur_net is None or self.state != "completed":
            return dbus.String("INACTIVE")
        b = self.cur_bss
        km = self.cur_net.key_mgmts()
        if b is not None and b.security in ("sae", "psk-sae") and "SAE" in km:
            return dbus.String("SAE")
        if b is not None and b.security in ("psk", "psk-sae"):
            return dbus.String("WPA2-PSK")
        if b is not None and b.security == "eap":
            return dbus.String("EAP-" + str(self.cur_net.conf.get("eap", "TTLS")).split()[0])
        return dbus.String("NONE")

    def ignore_set(self, sig):
        def s(v):
            typ = {"u": dbus.UInt32, "b": dbus.Boolean, "i": dbus.Int32}[sig]
            if not isinstance(v, typ):
                raise err(E_DBUS_FAILED, "wrong property type")
        return s

    def set_ap_scan(self, v):
        if not isinstance(v, dbus.UInt32):
            raise err(E_DBUS_FAILED, "wrong property type")
        if int(v) > 2:
            raise err(E_DBUS_FAILED, "ap_scan must be 0, 1, or 2")
        self.ap_scan = int(v)
        self.changed("ApScan")

    def set_country(self, v):
        if not isinstance(v, dbus.String) or len(v) != 2:
            raise err(E_DBUS_FAILED, "invalid country code")
        self.country = str(v)
        self.changed("Country")

    def fail_take(self, mode):
        for i, (m, c) in enumerate(self.fail):
            if m == mode:
                del self.fail[i]
                return (m, c)
        return None

    def destroy(self):
        self.gen += 1
        for n in list(self.nets.values()):
            FAKE.unexport(n)
        for b in list(self.bsses.values()):
            FAKE.unexport(b)
        FAKE.unexport(self)

    def mark_auth(self):
        mode = str(self.auth_mode())
        if mode != self.last_auth:
            self.last_auth = mode
            self.changed("CurrentAuthMode")

    def set_state(self, s):
        if not FAKE.exported(self):
            return False
        if s != self.state:
            self.state = s
            if s == "completed":
                self.since = time.monotonic()
            self.changed("State")
            self.mark_auth()
            self.flush()
        return False

    # --- BSSes
    def add_bss(self, spec, now=False):
        if now:
            return self.bss_found(spec)
        self.unseen.append(spec)
        return None

    def bss_found(self, spec):
        for b in self.bsses.values():
            if b.bssid == spec["bssid"] and b.ssid == spec["ssid"]:
                return b
        b = Bss(self, self.next_bss, spec)
        self.next_bss += 1
        self.bsses[b.path] = b
        FAKE.emit(self.path, IF_IFACE, "BSSAdded", "oa{sv}", b.path, b.all_props())
        self.changed("BSSs")
        return b

    def remove_bss(self, b, reason=-4):
        if self.cur_bss is b:
            self.lose_link(reason)
        self.bsses.pop(b.path, None)
        FAKE.unexport(b)
        FAKE.emit(self.path, IF_IFACE, "BSSRemoved", "o", b.path)
        self.changed("BSSs")

    # --- scanning
    @dbus.service.method(IF_IFACE, in_signature="a{sv}", out_signature="")
    def Scan(self, args):
        typ = args.get("Type")
        if not isinstance(typ, str) or typ not in ("active", "passive"):
            raise err(E_INVALID, BAD_ARGS)
        ssids = []
        for k, v in args.items():
            if k == "SSIDs":
                if not isinstance(v, dbus.Array):
                    raise err(E_INVALID, "Wrong SSIDs value type. Array of arrays of bytes required")
                for s in v:
                    b = to_bytes(s)
                    if b is None or len(b) > 32:
                        raise err(E_INVALID, "Too long SSID")
                    ssids.append(b)
                if typ == "passive" and ssids:
                    raise err(E_INVALID, "You can specify only Channels in passive scan")
            elif k == "Channels":
                if not isinstance(v, dbus.Array):
                    raise err(E_INVALID, "Wrong Channels value type. Array of structs required")
            elif k in ("IEs", "AllowRoam", "NonColoc", "6GHzOnly", "Type"):
                pass
            else:
                raise err(E_INVALID, "Unknown argument %s" % k)
        if self.fail_take("driver-error"):
            raise err(E_SCAN, "Scan request rejected")
        if self.wired():
            GLib.idle_add(self.wired_scan_fails)
            return
        # the scan is triggered from the event loop: Scanning/State change after the reply
        GLib.idle_add(lambda: self.start_scan(ssids, typ == "active") and False)

    def wired_scan_fails(self):
        """-Dwired has no scan: after the reply ScanDone(false), then {Scanning} (measured)."""
        if FAKE.exported(self):
            FAKE.emit(self.path, IF_IFACE, "ScanDone", "b", False)
            self.scanning = False
            self.changed("Scanning")
        return False

    def start_scan(self, ssids, active=True, then=None):
        self.scanning = True
        self.changed("Scanning")
        prev = self.state
        # A D-Bus Scan leaves State alone (measured on hwsim in the VM tier); only the
        # scan a connect needs shows as "scanning".
        if then is not None and self.state in ("disconnected", "inactive"):
            self.set_state("scanning")
        else:
            self.flush()
        gen = self.gen

        def done():
            named = set(ssids) if active else set()
            for spec in list(self.unseen):
                if spec["hidden"] and spec["ssid"] not in named and not (
                        self.want_net and self.want_net.conf.get("scan_ssid")
                        and self.want_net.conf.get("ssid") == spec["ssid"]):
                    if spec.get("beacon"):
                        self.bss_found(dict(spec, ssid=b"", hidden=False, beacon=False))
                    continue
                self.unseen.remove(spec)
                self.bss_found(spec)
            for b in self.bsses.values():
                b.seen = time.monotonic()
            self.scanning = False
            self.changed("Scanning")
            self.flush()
            FAKE.emit(self.path, IF_IFACE, "ScanDone", "b", True)
            if then is not None and gen == self.gen:
                then()
            elif self.state == "scanning":
                self.set_state(prev if prev != "scanning" else "disconnected")
                self.try_autoconnect()
            elif self.state == "disconnected" and self.want_net is None:
                # Nothing to connect to after a scan: inactive (measured on hwsim).
                self.set_state("inactive")
            else:
                self.try_autoconnect()
            return False
        GLib.timeout_add(FAKE.step_ms * 2, done)

    @dbus.service.method(IF_IFACE, in_signature="", out_signature="")
    def AbortScan(self):
        pass

    @dbus.service.method(IF_IFACE, in_signature="u", out_signature="")
    def FlushBSS(self, age):
        for b in list(self.bsses.values()):
            if b is not self.cur_bss and (age == 0 or time.monotonic() - b.seen > age):
                self.unseen.append(b.spec)
                self.remove_bss(b)

    @dbus.service.method(IF_IFACE, in_signature="s", out_signature="")
    def AutoScan(self, arg):
        pass

    # --- networks
    @dbus.service.method(IF_IFACE, in_signature="a{sv}", out_signature="o")
    def AddNetwork(self, args):
        try:
            conf = parse_network(args)
        except dbus.exceptions.DBusException:
            conf = None
        nid = max((x.net_id for x in self.nets.values()), default=-1) + 1
        n = Network(self, nid, conf or {})
        self.nets[n.path] = n
        FAKE.emit(self.path, IF_IFACE, "NetworkAdded", "oa{sv}", n.path, n.all_props())
        if conf is None:
            # measured on 2.10: the block is added, announced, removed again, then the error
            del self.nets[n.path]
            FAKE.unexport(n)
            FAKE.emit(self.path, IF_IFACE, "NetworkRemoved", "o", n.path)
            raise err(E_DBUS_INVALID, "invalid message format")
        return dbus.ObjectPath(n.path)

    def net_of(self, path):
        n = self.nets.get(str(path))
        if n is None:
            if not str(path).startswith(self.path + "/Networks/"):
                raise err(E_INVALID, BAD_ARGS)
            raise err(E_NETUNKNOWN, "There is no such a network in this interface.")
        return n

    @dbus.service.method(IF_IFACE, in_signature="o", out_signature="")
    def RemoveNetwork(self, path):
        n = self.net_of(path)
        self.drop_network(n)

    def drop_network(self, n):
        if self.want_net is n:
            self.want_net = None
        if self.cur_net is n:
            self.lose_link(-3)
        del self.nets[n.path]
        FAKE.unexport(n)
        FAKE.emit(self.path, IF_IFACE, "NetworkRemoved", "o", n.path)

    @dbus.service.method(IF_IFACE, in_signature="", out_signature="")
    def RemoveAllNetworks(self):
        for n in list(self.nets.values()):
            self.drop_network(n)

    @dbus.service.method(IF_IFACE, in_signature="o", out_signature="")
    def SelectNetwork(self, path):
        n = self.net_of(path)
        if self.fail_take("driver-error"):
            raise err(E_UNKNOWN, "wpa_supplicant could not select the network")
        self.user_disconnected = False
        self.want_net = n
        FAKE.emit(self.path, IF_IFACE, "NetworkSelected", "o", n.path)
        for other in self.nets.values():
            if other is not n and other.enabled:
                other.enabled = False
                other.changed("Enabled")
        if not n.enabled:
            n.enabled = True
            n.changed("Enabled")
        if self.cur_net is not None:
            self.lose_link(-3, keep_want=True)
        self.gen += 1
        if self.wired():
            GLib.idle_add(self.wired_assoc, "select")
        else:
            GLib.idle_add(self.connect_scan)

    def wired(self):
        return self.driver.split(",")[0] == "wired"

    def wired_assoc(self, how):
        """-Dwired: no scan, a synthesised association; key_mgmt NONE completes at once, in
        one PropertiesChanged (measured on 2.10): after SelectNetwork {[ApScan,]
        CurrentAuthMode, CurrentBSS, State} (CurrentNetwork set, not signalled), after
        Reconnect {CurrentAuthMode, CurrentBSS, CurrentNetwork, State}, after Reassociate
        while completed {CurrentAuthMode, State} (State=completed again)."""
        n = self.want_net
        if n is None or not FAKE.exported(self):
            return False
        if self.ap_scan != 0:
            self.ap_scan = 0
            self.changed("ApScan")
        if how == "reconnect":
            self.changed("CurrentNetwork")
        if how != "reassoc":
            self.changed("CurrentBSS")
        self.cur_net = n
        self.state = "completed" if n.key_mgmts() == ["NONE"] else "associated"
        self.changed("State")
        self.changed("CurrentAuthMode")
        self.last_auth = str(self.auth_mode())
        self.flush()
        return False

    def connect_scan(self):
        """SelectNetwork/Reconnect: connect at once on fresh scan results (the real one
        on hwsim, measured in the VM tier: no scanning state when the last scan is recent,
        wpa_supplicant's ScanResValidForConnect), else scan first."""
        if self.want_net is None:
            return False
        if self.try_autoconnect_fresh():
            return False
        ssid = self.want_net.conf.get("ssid")
        self.start_scan([ssid] if ssid and self.want_net.conf.get("scan_ssid") else [],
                        then=self.after_connect_scan)
        return False

    def try_autoconnect_fresh(self):
        b = self.best_bss(self.want_net)
        if b is None or time.monotonic() - b.seen > 5:
            return False
        return self.try_autoconnect()

    def after_connect_scan(self):
        if not self.try_autoconnect() and self.state == "scanning":
            self.set_state("disconnected")

    def best_bss(self, net):
        ssid = net.conf.get("ssid")
        cands = [b for b in self.bsses.values()
                 if b.ssid == ssid and compatible(net, b) and b.in_range()]
        return max(cands, key=lambda b: b.signal, default=None)

    def try_autoconnect(self):
        n = self.want_net
        if n is None or self.user_disconnected or self.cur_net is not None:
            return False
        if self.state not in ("disconnected", "inactive", "scanning"):
            return False
        b = self.best_bss(n)
        if b is None:
            return False
        self.walk(n, b)
        return True

    # --- the connection state walk
    def walk(self, n, b, roam=False):
        self.gen += 1
        gen = self.gen
        steps = []
        fail = self.fail_take("auth-reject") or self.fail_take("assoc-reject") \
            or self.fail_take("4way-timeout")
        eap = b.security == "eap"
        wpa = b.security in ("psk", "sae", "psk-sae", "eap")
        sae = b.security == "sae" or (b.security == "psk-sae" and "SAE" in n.key_mgmts()
                                      and not any(t in n.key_mgmts() for t in ("WPA-PSK",)))
        good = b.security in ("open", "wep", "eap") or psk_ok(n, b)

        def st(s, bss=None):
            def f():
                if bss is not None:
                    self.cur_bss, self.cur_net = bss, n
                    self.changed("CurrentBSS", "CurrentNetwork")
                self.set_state(s)
            return f

        def fail_with(prop, code, reason=None):
            def f():
                if prop == "AuthStatusCode":
                    self.auth_status = code
                elif prop == "AssocStatusCode":
                    self.assoc_status = code
                if prop:
                    self.changed(prop)
                if reason is not None:
                    self.disc_reason = reason
                    self.changed("DisconnectReason")
                if reason is not None:
                    self.flush()
                self.cur_bss = self.cur_net = None
                self.changed("CurrentBSS")
                self.set_state("disconnected")
            return f

        steps.append(st("authenticating", b))
        if fail and fail[0] == "auth-reject":
            steps.append(fail_with("AuthStatusCode", fail[1]))
        elif sae and not good:
            # hostapd answers a mismatching SAE confirm with status 15 (challenge failure)
            steps.append(fail_with("AuthStatusCode", 15))
        else:
            steps.append(st("associating"))
            if fail and fail[0] == "assoc-reject":
                steps.append(fail_with("AssocStatusCode", fail[1]))
            else:
                steps.append(st("associated"))
                if eap and b.spec.get("identity"):
                    conf = n.conf
                    method = str(conf.get("eap", "")).split()[0] if conf.get("eap") else ""
                    if method in ("PEAP", "TTLS"):
                        ok = (conf.get("identity") == b.spec["identity"]
                              and conf.get("password") == b.passphrase)
                    else:
                        ok = method == "TLS" and bool(conf.get("client_cert")) \
                            and bool(conf.get("private_key"))
                    if ok:
                        steps.append(st("4way_handshake"))
                        steps.append(st("completed"))
                    else:
                        steps.append(fail_with(None, 0, 23))
                elif eap:
                    pass   # no EAP server: stays associated (see module doc)
                elif wpa:
                    steps.append(st("4way_handshake"))
                    if not good or (fail and fail[0] == "4way-timeout"):
                        # the AP deauthenticates after its msg 1/4 retries: reason 15
                        steps.append(fail_with(None, 0, 15))
                    else:
                        # The GTK comes in message 3/4: no group handshake (measured on
                        # hwsim with hostapd in the VM tier; it only runs on a rekey).
                        steps.append(st("completed"))
                else:
                    steps.append(st("completed"))

        def run(i=0):
            if gen != self.gen:
                return False
            steps[i]()
            if i + 1 < len(steps):
                GLib.timeout_add(FAKE.step_ms, run, i + 1)
            return False
        GLib.timeout_add(FAKE.step_ms if not roam else 1, run)

    def lose_link(self, reason, keep_want=False):
        """Measured (Disconnect on 2.10): PropertiesChanged {DisconnectReason} first, then
        {CurrentAuthMode, CurrentBSS, State=disconnected}; CurrentNetwork turns "/" unsignalled."""
        self.gen += 1
        self.disc_reason = reason
        self.changed("DisconnectReason")
        self.flush()
        self.cur_bss = self.cur_net = None
        self.changed("CurrentBSS", "SessionLength")
        if self.state != "disconnected":
            # flushed when the main loop is idle: after the method reply, as measured
            self.state = "disconnected"
            self.changed("State")
        self.mark_auth()
        if not keep_want:
            # like wpa_supplicant after a loss: scan again, then connect to what is found
            GLib.timeout_add(FAKE.step_ms, self.rescan_after_loss, self.gen)

    def rescan_after_loss(self, gen):
        if gen == self.gen and self.want_net is not None and not self.user_disconnected \
                and self.cur_net is None and FAKE.exported(self):
            self.connect_scan()
        return False

    @dbus.service.method(IF_IFACE, in_signature="", out_signature="")
    def Disconnect(self):
        if self.cur_net is None and self.state in ("disconnected", "inactive") \
                or self.user_disconnected:
            raise err(E_NOTCONN, "This interface is not connected")
        self.user_disconnected = True
        self.lose_link(-3, keep_want=True)

    def reconnect_now(self, how="reconnect"):
        self.user_disconnected = False
        if self.want_net is None:
            self.want_net = next((n for n in self.nets.values() if n.enabled), None)
        if self.wired():
            if self.cur_net is None:
                how = "reconnect"
            self.gen += 1
            GLib.idle_add(self.wired_assoc, how)
            return
        if self.cur_net is not None and self.state == "completed" and how == "reassoc":
            # reassociation from a connection: no disconnected state in between
            b = self.best_bss(self.cur_net) or self.cur_bss
            self.walk(self.cur_net, b, roam=True)
            return
        if self.cur_net is not None:
            self.lose_link(-3, keep_want=True)
        self.gen += 1
        GLib.idle_add(self.connect_scan)

    @dbus.service.method(IF_IFACE, in_signature="", out_signature="")
    def Reassociate(self):
        if self.fail_take("driver-error"):
            raise err(E_UNKNOWN, "Reassociate failed")
        self.reconnect_now("reassoc")

    @dbus.service.method(IF_IFACE, in_signature="", out_signature="")
    def Reconnect(self):
        # measured: accepted also when never disconnected; acts only after a Disconnect
        if self.fail_take("driver-error"):
            raise err(E_UNKNOWN, "Reconnect failed")
        if self.user_disconnected:
            self.reconnect_now()

    @dbus.service.method(IF_IFACE, in_signature="", out_signature="")
    def Reattach(self):
        if self.cur_net is None:
            raise err(E_NOTCONN, "This interface is not connected")
        self.reconnect_now()

    @dbus.service.method(IF_IFACE, in_signature="", out_signature="a{sv}")
    def SignalPoll(self):
        b = self.cur_bss
        if b is None or self.state != "completed":
            raise err(E_DBUS_FAILED, "Failed to read signal")   # as 2.10 answers
        return dbus.Dictionary({
            "rssi": dbus.Int32(b.signal), "linkspeed": dbus.Int32(54),
            "noise": dbus.Int32(-95), "frequency": dbus.UInt32(b.freq),
            "width": dbus.String("20 MHz"), "avg-rssi": dbus.Int32(b.signal)}, signature="sv")

    @dbus.service.method(IF_IFACE, in_signature="oss", out_signature="")
    def NetworkReply(self, path, field, value):
        self.net_of(path)

    @dbus.service.method(IF_IFACE, in_signature="", out_signature="")
    def EAPLogoff(self):
        pass

    @dbus.service.method(IF_IFACE, in_signature="", out_signature="")
    def EAPLogon(self):
        pass

    def roam(self, b):
        if self.cur_net is None or self.state != "completed":
            raise err(E_NOTCONN, "This interface is not connected")
        if b.ssid != self.cur_bss.ssid or b is self.cur_bss:
            raise err(E_INVALID, "roam target must be another BSS of the current SSID")
        self.walk(self.cur_net, b, roam=True)


def bss_spec(props):
    d = {}
    for k in props:
        if k not in ("ssid", "ssid_hex", "bssid", "signal", "frequency", "security",
                     "passphrase", "identity", "hidden", "beacon", "now", "ifname"):
            raise err(E_INVALID, "unknown BSS key %s" % k)
    if "ssid_hex" in props:
        try:
            d["ssid"] = bytes.fromhex(str(props["ssid_hex"]))
        except ValueError:
            raise err(E_INVALID, "bad ssid_hex")
    else:
        d["ssid"] = to_bytes(props.get("ssid", b""))
    if d["ssid"] is None or len(d["ssid"]) > 32:
        raise err(E_INVALID, "ssid must be 0..32 bytes")
    d["bssid"] = mac_bytes(str(props.get("bssid", "")))
    d["signal"] = int(props.get("signal", -50))
    if not -32768 <= d["signal"] <= 32767:
        raise err(E_INVALID, "signal must fit int16")
    d["frequency"] = int(props.get("frequency", 2412))
    if not 0 <= d["frequency"] <= 65535:
        raise err(E_INVALID, "frequency must fit uint16")
    d["security"] = str(props.get("security", "open"))
    if d["security"] not in SECURITIES:
        raise err(E_INVALID, "security must be one of " + "|".join(SECURITIES))
    d["passphrase"] = str(props.get("passphrase", ""))
    d["hidden"] = bool(props.get("hidden", False))
    d["beacon"] = bool(props.get("beacon", False))
    d["identity"] = str(props.get("identity", ""))
    d["ifname"] = str(props.get("ifname", ""))
    return d


class Control(dbus.service.Object):
    def __init__(self):
        dbus.service.Object.__init__(self, FAKE.bus, CTL_PATH)

    def _message_cb(self, connection, message):
        want = SIGS.get((message.get_interface(), message.get_member()))
        if want is not None and (message.get_signature() or "") != want:
            connection.send_message(dbus.lowlevel.ErrorMessage(message, E_DBUS_INVALID, "Invalid arg"))
            return
        try:
            return dbus.service.Object._message_cb(self, connection, message)
        except Exception as e:
            sys.stderr.write("fake: control error %r\n" % e)

    def ifc(self, ifname):
        i = FAKE.ifaces.get(str(ifname))
        if i is None:
            raise err(E_IFUNKNOWN, "no interface %s" % ifname)
        return i

    def bss(self, path):
        for i in FAKE.ifaces.values():
            if str(path) in i.bsses:
                return i, i.bsses[str(path)]
        raise err(E_INVALID, "no BSS %s" % path)

    @dbus.service.method(CTL, in_signature="sa{sv}", out_signature="o")
    def AddBss(self, ifname, props):
        spec = bss_spec(props)
        spec["ifname"] = str(ifname)
        now = bool(props.get("now", False))
        if not ifname:
            FAKE.pending_bsses.append(spec)
            res = "/"
            for i in FAKE.ifaces.values():
                b = i.add_bss(spec, now)
                res = b.path if b else res
            return dbus.ObjectPath(res)
        i = self.ifc(ifname)
        b = i.add_bss(spec, now)
        if b is None:
            return dbus.ObjectPath("/")
        GLib.idle_add(lambda: i.try_autoconnect() and False)
        return dbus.ObjectPath(b.path)

    @dbus.service.method(CTL, in_signature="o", out_signature="")
    def RemoveBss(self, path):
        i, b = self.bss(path)
        i.remove_bss(b)

    @dbus.service.method(CTL, in_signature="on", out_signature="")
    def SetSignal(self, path, dbm):
        i, b = self.bss(path)
        was = b.in_range()
        b.signal = int(dbm)
        b.changed("Signal")
        if was and not b.in_range() and i.cur_bss is b:
            i.lose_link(-4)          # out of range: beacon loss, the BSS object stays
        elif not was and b.in_range():
            GLib.idle_add(lambda: i.try_autoconnect() and False)

    @dbus.service.method(CTL, in_signature="so", out_signature="")
    def Roam(self, ifname, path):
        i = self.ifc(ifname)
        _, b = self.bss(path)
        if b.ifc is not i:
            raise err(E_INVALID, "BSS is not on %s" % ifname)
        i.roam(b)

    @dbus.service.method(CTL, in_signature="ssi", out_signature="")
    def FailNext(self, ifname, mode, code):
        if mode not in ("assoc-reject", "auth-reject", "driver-error", "no-reply", "4way-timeout"):
            raise err(E_INVALID, "unknown mode %s" % mode)
        self.ifc(ifname).fail.append((str(mode), int(code)))

    @dbus.service.method(CTL, in_signature="", out_signature="")
    def Crash(self):
        GLib.idle_add(lambda: (FAKE.bus.flush(), os._exit(1)))

    @dbus.service.method(CTL, in_signature="", out_signature="as")
    def Trace(self):
        return dbus.Array(FAKE.trace, signature="s")

    @dbus.service.method(CTL, in_signature="", out_signature="")
    def ClearTrace(self):
        FAKE.trace.clear()

    @dbus.service.method(CTL, in_signature="u", out_signature="")
    def SetStepDelay(self, ms):
        FAKE.step_ms = max(1, int(ms))


class Fake:
    def __init__(self, bus, step_ms):
        self.bus = bus
        self.step_ms = step_ms
        self.ifaces = {}
        self.next_if = 0
        self.trace = []
        self.pending_bsses = []

    def exported(self, obj):
        # A mark on the object, not its id(): ids are reused once an object is freed, and
        # a new interface that got a removed one's id was taken for removed (its State and
        # ScanDone never went out: a flake of fake_traces_equal_real_wpa_supplicant_wired).
        return not getattr(obj, "_pm_unexported", False)

    def unexport(self, obj):
        obj._pm_unexported = True
        try:
            obj.remove_from_connection()
        except Exception:
            pass

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


def main():
    global FAKE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bus", help="D-Bus address (default: $DBUS_SYSTEM_BUS_ADDRESS)")
    ap.add_argument("--bsses", help="JSON file: list of AddBss property dicts")
    ap.add_argument("--step-ms", type=int, default=30)
    ap.add_argument("--modes", default=",".join(MODES),
                    help="the interfaces' Capabilities.Modes, comma-separated (a radio without "
                         "'ap' cannot be an access point)")
    a = ap.parse_args()
    MODES[:] = [m for m in a.modes.split(",") if m]
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    addr = a.bus or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    if not addr:
        sys.exit("fake_wpa_supplicant: no bus (--bus or DBUS_SYSTEM_BUS_ADDRESS)")
    bus = dbus.bus.BusConnection(addr)
    FAKE = Fake(bus, max(1, a.step_ms))
    if a.bsses:
        with open(a.bsses) as f:
            for p in json.load(f):
                if "ssid" in p and isinstance(p["ssid"], str):
                    p["ssid"] = p["ssid"].encode()
                FAKE.pending_bsses.append(bss_spec(p))
    Root()
    Control()
    name = dbus.service.BusName(SVC, bus, do_not_queue=True)
    sys.stderr.write("fake_wpa_supplicant: %s on %s (%d preloaded BSSes)\n"
                     % (name.get_name(), addr, len(FAKE.pending_bsses)))
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
