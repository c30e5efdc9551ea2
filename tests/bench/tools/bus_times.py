#!/usr/bin/python3
"""When a ConnMan-API daemon reaches its start-up milestones, seen from the bus.

Runs on the lab's system bus (DBUS_SYSTEM_BUS_ADDRESS) with GLib's D-Bus client, started
before the daemon; the same for pathman and ConnMan. Prints "ready" once subscribed, then
one "key epoch_ns" line per milestone, and exits after the last or after TIMEOUT seconds:

  owned  NameOwnerChanged gave net.connman an owner
  ready  N distinct services reported State ready|online (ServicesChanged or
         Service.PropertyChanged), N the first argument

Usage: bus_times.py N [TIMEOUT]
"""
import sys
import time

from gi.repository import Gio, GLib

want = int(sys.argv[1])
timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
ready = set()
done = {}
loop = GLib.MainLoop()


def mark(key):
    if key not in done:
        done[key] = time.time_ns()
        print(f"{key} {done[key]}", flush=True)
    if "owned" in done and "ready" in done:
        loop.quit()


def state(path, value):
    if value in ("ready", "online"):
        ready.add(path)
    else:
        ready.discard(path)
    if len(ready) >= want:
        mark("ready")


def on_signal(_conn, _sender, path, iface, member, params):
    if member == "NameOwnerChanged":
        name, _old, new = params.unpack()
        if name == "net.connman" and new:
            mark("owned")
    elif iface == "net.connman.Manager" and member == "ServicesChanged":
        changed, _removed = params.unpack()
        for spath, props in changed:
            if "State" in props:
                state(spath, props["State"])
    elif iface == "net.connman.Service" and member == "PropertyChanged":
        name, value = params.unpack()
        if name == "State":
            state(path, value)


bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
for iface in ("org.freedesktop.DBus", "net.connman.Manager", "net.connman.Service"):
    bus.signal_subscribe(None, iface, None, None, None, Gio.DBusSignalFlags.NONE, on_signal)
# A round trip, so the match rules are in place before "ready" is printed.
bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
              "GetId", None, None, Gio.DBusCallFlags.NONE, -1, None)
print("ready", flush=True)
GLib.timeout_add(int(timeout * 1000), loop.quit)
loop.run()
