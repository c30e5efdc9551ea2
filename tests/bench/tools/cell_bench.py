#!/usr/bin/python3
"""One cellular Connect, timed from the bus: dbus-monitor (a monitor connection; the lab's
private bus allows it) timestamps the messages of oFono's contexts and pathman's services, a
GLib client calls Service.Connect and waits for its reply. Prints one "key epoch_ns" line per
milestone (the first of each), then exits (status 1 when the Connect failed or timed out):

  connect   the Connect call is sent
  setprop   pathman's ConnectionContext.SetProperty("Active", true) to oFono
  active    oFono's ConnectionContext.PropertyChanged("Active", true)
  ready     net.connman.Service PropertyChanged State ready|online of the service
  reply     the Connect's method return (or error)

Usage: cell_bench.py SERVICE_ID CONTEXT_PATH [TIMEOUT]
"""
import re
import subprocess
import sys
import threading
import time

from gi.repository import Gio, GLib

sid, ctx = sys.argv[1], sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
spath = "/net/connman/service/" + sid
seen = {}
lock = threading.Lock()
started = threading.Event()
HEAD = re.compile(r"^(method call|signal|method return|error) time=([0-9.]+) (.*)$")


def mark(key, t_ns):
    with lock:
        seen.setdefault(key, t_ns)


def judge(kind, t_ns, fields, args):
    path, iface, member = fields.get("path"), fields.get("interface"), fields.get("member")
    text = " ".join(args)
    if kind == "method call" and iface == "org.ofono.ConnectionContext" and \
            member == "SetProperty" and path == ctx and '"Active"' in text and "boolean true" in text:
        mark("setprop", t_ns)
    elif kind == "signal" and iface == "org.ofono.ConnectionContext" and \
            member == "PropertyChanged" and path == ctx and '"Active"' in text and "boolean true" in text:
        mark("active", t_ns)
    elif kind == "signal" and iface == "net.connman.Service" and member == "PropertyChanged" \
            and path == spath and '"State"' in text and ('"ready"' in text or '"online"' in text):
        mark("ready", t_ns)


def reader(stream):
    block = None
    for line in stream:
        m = HEAD.match(line.rstrip("\n"))
        if m:
            started.set()
            if block:
                judge(*block)
            fields = dict(re.findall(r"(\w+)=([^ ;]+)", m.group(3)))
            block = (m.group(1), int(float(m.group(2)) * 1e9), fields, [])
        elif block:
            block[3].append(line.strip())
        # A block is judged when the next one starts, or here once its arguments are in.
        if block and block[3] and "boolean" in block[3][-1] or block and '"ready"' in line or \
                block and '"online"' in line:
            judge(*block)


mon = subprocess.Popen(
    ["dbus-monitor", "--system",
     "type='method_call',interface='org.ofono.ConnectionContext'",
     "type='signal',interface='org.ofono.ConnectionContext'",
     "type='signal',interface='net.connman.Service'"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
threading.Thread(target=reader, args=(mon.stdout,), daemon=True).start()
# dbus-monitor's first message (its NameLost on becoming a monitor) says it listens.
if not started.wait(10):
    sys.exit("dbus-monitor did not start")
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
loop = GLib.MainLoop()
result = {"ok": False}


def done(conn, res):
    try:
        conn.call_finish(res)
        result["ok"] = True
    except GLib.Error as e:
        print("error %s" % e.message, file=sys.stderr)
    mark("reply", time.time_ns())
    loop.quit()


mark("connect", time.time_ns())
bus.call("net.connman", spath, "net.connman.Service", "Connect", None, None,
         Gio.DBusCallFlags.NONE, int(timeout * 1000), None, done)
GLib.timeout_add(int(timeout * 1000), loop.quit)
loop.run()
# The monitor may print the last signals a moment after the reply.
end = time.monotonic() + 3
while "ready" not in seen and time.monotonic() < end:
    time.sleep(0.01)
mon.terminate()
for k in ("connect", "setprop", "active", "ready", "reply"):
    if k in seen:
        print(k, seen[k])
sys.exit(0 if result["ok"] else 1)
