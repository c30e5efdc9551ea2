#!/usr/bin/python3
"""One cellular Connect, timed from the bus: a monitor connection (BecomeMonitor, allowed
on the lab's private bus) timestamps every message, a second connection calls
Service.Connect and waits for its reply. Prints one "key epoch_ns" line per milestone
(the first of each), then exits (status 1 when the Connect failed or timed out):

  connect   the Connect call is sent
  setprop   pathman's ConnectionContext.SetProperty("Active", true) to oFono
  active    oFono's ConnectionContext.PropertyChanged("Active", true)
  ready     net.connman.Service PropertyChanged State ready|online of the service
  reply     the Connect's method return (or error)

Usage: cell_bench.py SERVICE_ID CONTEXT_PATH [TIMEOUT]
"""
import sys
import threading
import time

from gi.repository import Gio, GLib

sid, ctx = sys.argv[1], sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
spath = "/net/connman/service/" + sid
seen = {}
lock = threading.Lock()
loop = GLib.MainLoop()


def mark(key):
    with lock:
        if key not in seen:
            seen[key] = time.time_ns()


def on_message(_conn, msg, _incoming):
    t = msg.get_message_type()
    iface, member, path = msg.get_interface(), msg.get_member(), msg.get_path()
    body = msg.get_body()
    if (t == Gio.DBusMessageType.METHOD_CALL and iface == "org.ofono.ConnectionContext"
            and member == "SetProperty" and path == ctx and body is not None):
        name, value = body.unpack()
        if name == "Active" and value is True:
            mark("setprop")
    elif (t == Gio.DBusMessageType.SIGNAL and iface == "org.ofono.ConnectionContext"
          and member == "PropertyChanged" and path == ctx and body is not None):
        name, value = body.unpack()
        if name == "Active" and value is True:
            mark("active")
    elif (t == Gio.DBusMessageType.SIGNAL and iface == "net.connman.Service"
          and member == "PropertyChanged" and path == spath and body is not None):
        name, value = body.unpack()
        if name == "State" and value in ("ready", "online"):
            mark("ready")
    # A monitor must never answer what it sees: calls and signals stop here. Replies
    # go on (GDBus ignores those it did not ask for; BecomeMonitor's is ours).
    if t in (Gio.DBusMessageType.METHOD_RETURN, Gio.DBusMessageType.ERROR):
        return msg
    return None


addr = Gio.dbus_address_get_for_bus_sync(Gio.BusType.SYSTEM, None)
mon = Gio.DBusConnection.new_for_address_sync(
    addr, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
    | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
mon.add_filter(on_message)
mon.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
              "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
              GLib.Variant("(asu)", ([], 0)), None, Gio.DBusCallFlags.NONE, -1, None)
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
result = {"ok": False}


def done(conn, res):
    try:
        conn.call_finish(res)
        result["ok"] = True
    except GLib.Error as e:
        print("error %s" % e.message, file=sys.stderr)
    mark("reply")
    loop.quit()


mark("connect")
bus.call("net.connman", spath, "net.connman.Service", "Connect", None, None,
         Gio.DBusCallFlags.NONE, int(timeout * 1000), None, done)
GLib.timeout_add(int(timeout * 1000), loop.quit)
loop.run()
# The monitor may see the last signals a moment after the reply.
end = time.monotonic() + 2
while "ready" not in seen and time.monotonic() < end:
    GLib.MainContext.default().iteration(False)
    time.sleep(0.01)
for k in ("connect", "setprop", "active", "ready", "reply"):
    if k in seen:
        print(k, seen[k])
sys.exit(0 if result["ok"] else 1)
