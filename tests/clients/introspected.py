#!/usr/bin/python3
"""A ConnMan client the way ConnMan's own Python test scripts are written:
dbus-python proxies whose argument types come from the daemon's
introspection. Nothing here names a D-Bus type: a plain Python str becomes an
object path, a list an `as` inside a variant, a dict an `a{sv}`, only because
Introspect said so. If the introspection lacked arguments, dbus-python would
send the calls with the wrong signature and they would fail.

Usage: introspected.py STEP [ARGS...]; prints one line per call:
  ok <what>            the call succeeded
  error <what> <name>  the daemon answered with error <name>
and exits non-zero on anything unexpected.

  manager SVC_A SVC_B   OfflineMode, Nameservers.Configuration of SVC_A,
                        Powered of ethernet, SVC_B MoveBefore SVC_A,
                        RegisterAgent / UnregisterAgent
  session               CreateSession with a settings dict, Change
                        FlowSelectors, then waits for stdin to close (the
                        session dies with the client)
  counter               RegisterCounter, prints the first Usage, waits for stdin
"""
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.SystemBus()


def proxy(path, iface):
    # introspect=True is dbus-python's default: signatures come from the daemon.
    return dbus.Interface(bus.get_object("net.connman", path, introspect=True), iface)


def call(what, fn, *args):
    try:
        fn(*args)
        print("ok", what, flush=True)
        return True
    except dbus.DBusException as e:
        print("error", what, e.get_dbus_name(), flush=True)
        return False


def svc_path(ident):
    return "/net/connman/service/" + ident


def manager(a, b):
    mgr = proxy("/", "net.connman.Manager")
    call("Manager.SetProperty OfflineMode", mgr.SetProperty, "OfflineMode", False)
    svc_a = proxy(svc_path(a), "net.connman.Service")
    call("Service.SetProperty Nameservers.Configuration", svc_a.SetProperty,
         "Nameservers.Configuration", ["192.0.2.53"])
    tech = proxy("/net/connman/technology/ethernet", "net.connman.Technology")
    # Already on: ConnMan's answer is AlreadyEnabled, a well-formed call.
    call("Technology.SetProperty Powered", tech.SetProperty, "Powered", True)
    svc_b = proxy(svc_path(b), "net.connman.Service")
    call("Service.MoveBefore", svc_b.MoveBefore, svc_path(a))
    call("Manager.RegisterAgent", mgr.RegisterAgent, "/pathman/test/agent")
    call("Manager.UnregisterAgent", mgr.UnregisterAgent, "/pathman/test/agent")


class Notifier(dbus.service.Object):
    @dbus.service.method("net.connman.Notification", in_signature="a{sv}")
    def Update(self, settings):
        if "FlowSelectors" in settings:
            print("update FlowSelectors", ",".join(settings["FlowSelectors"]), flush=True)

    @dbus.service.method("net.connman.Notification")
    def Release(self):
        print("release", flush=True)


class Counter(dbus.service.Object):
    @dbus.service.method("net.connman.Counter", in_signature="oa{sv}a{sv}")
    def Usage(self, service, home, roaming):
        keys = ",".join(str(k) for k in home.keys())
        print("usage", service, keys, flush=True)

    @dbus.service.method("net.connman.Counter")
    def Release(self):
        print("release", flush=True)


def wait_for_stdin_close(loop):
    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP,
                      lambda *a: (sys.stdin.read(), loop.quit()) and False)
    loop.run()


def session():
    Notifier(bus, "/pathman/test/notifier")
    mgr = proxy("/", "net.connman.Manager")
    settings = {"AllowedBearers": ["ethernet"], "ConnectionType": "any",
                "FlowSelectors": ["*-*-udp-*-7777"]}
    path = mgr.CreateSession(settings, "/pathman/test/notifier")
    print("ok Manager.CreateSession", path, flush=True)
    sess = proxy(path, "net.connman.Session")
    call("Session.Change FlowSelectors", sess.Change, "FlowSelectors", ["*-*-udp-*-8888"])
    call("Session.Connect", sess.Connect)
    wait_for_stdin_close(GLib.MainLoop())


def counter():
    Counter(bus, "/pathman/test/counter")
    mgr = proxy("/", "net.connman.Manager")
    call("Manager.RegisterCounter", mgr.RegisterCounter, "/pathman/test/counter", 0, 1)
    wait_for_stdin_close(GLib.MainLoop())


if __name__ == "__main__":
    step = sys.argv[1]
    if step == "manager":
        manager(sys.argv[2], sys.argv[3])
    elif step == "session":
        session()
    elif step == "counter":
        counter()
    else:
        sys.exit("unknown step " + step)
