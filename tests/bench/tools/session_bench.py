#!/usr/bin/python3
"""Session figures measured from outside the daemon, the same way for pathman and ConnMan.

Runs in the lab's DUT namespace (lab.sh exec), on the lab's system bus, with GLib's D-Bus
client (a real client library, one connection for the whole run).

  session_bench.py latency N   N times: CreateSession(AllowedBearers=[ethernet],
                               ConnectionType=any); the time from the call to the kernel's
                               first route in a routing table that did not exist before
                               (the session's table; `ip -ts monitor route` timestamps), and
                               the call's round trip; then DestroySession, and (when the
                               daemon removes the table) wait until it is gone; at the end,
                               how many of those tables are still there.
  session_bench.py cycles C    C times CreateSession + DestroySession; round trips of both.

Prints "key value" lines: medians in ms and counts.
"""
import queue
import re
import subprocess
import sys
import threading
import time
from datetime import datetime

from gi.repository import Gio, GLib

SETTINGS = {"AllowedBearers": GLib.Variant("as", ["ethernet"]),
            "ConnectionType": GLib.Variant("s", "any")}
TABLE = re.compile(r"\btable (\d+)\b")


def median(v):
    v = sorted(v)
    if not v:
        return "n/a"
    n = len(v)
    m = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return f"{m:.2f}"


def bus():
    return Gio.bus_get_sync(Gio.BusType.SYSTEM, None)


def create(c, i):
    r = c.call_sync("net.connman", "/", "net.connman.Manager", "CreateSession",
                    GLib.Variant("(a{sv}o)", (SETTINGS, f"/bench/n{i}")), None, 0, 10000, None)
    return r.unpack()[0]


def destroy(c, path):
    c.call_sync("net.connman", "/", "net.connman.Manager", "DestroySession",
                GLib.Variant("(o)", (path,)), None, 0, 10000, None)


def tables():
    out = subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    out += subprocess.run(["ip", "-6", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    return {int(m) for m in TABLE.findall(out)}


def wait_gone(t, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if t not in tables():
            return True
        time.sleep(0.005)
    return False


def latency(n):
    mon = subprocess.Popen(["ip", "-ts", "monitor", "route"], stdout=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in mon.stdout], daemon=True).start()
    time.sleep(0.3)  # the monitor subscribes before the first call (events before it are lost)
    c = bus()
    to_kernel, rtt, missing, seen_tables = [], [], 0, []
    # A daemon that removes a destroyed session's table may give the next session the same
    # number, so wait for it to go; once one stays (ConnMan 1.41 leaks them), stop waiting.
    removes = True
    for i in range(n):
        before = tables()
        while not lines.empty():
            lines.get_nowait()
        t0 = time.time()
        path = create(c, i)
        rtt.append((time.time() - t0) * 1000)
        seen = None
        end = time.time() + 5
        while time.time() < end and seen is None:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line.startswith("[") and "Deleted" not in line:
                m = TABLE.search(line)
                if m and int(m.group(1)) not in before:
                    ts = datetime.fromisoformat(line[1:line.index("]")]).timestamp()
                    seen = (int(m.group(1)), ts)
        if seen is None:
            missing += 1
        else:
            to_kernel.append((seen[1] - t0) * 1000)
        destroy(c, path)
        if seen is not None:
            seen_tables.append(seen[0])
            if removes and not wait_gone(seen[0]):
                removes = False
    mon.terminate()
    left = tables()
    kept = sum(1 for t in seen_tables if t in left)
    print(f"create_to_table_ms {median(to_kernel)}")
    print(f"create_rtt_ms {median(rtt)}")
    print(f"sessions_without_table {missing}")
    print(f"tables_left_after_destroy {kept}")


def cycles(n):
    c = bus()
    cr, de, errors = [], [], 0
    for i in range(n):
        try:
            t0 = time.time()
            path = create(c, i)
            t1 = time.time()
            destroy(c, path)
            t2 = time.time()
        except GLib.Error as e:
            errors += 1
            if errors == 1:
                print(f"first error: {e.message}", file=sys.stderr)
            continue
        cr.append((t1 - t0) * 1000)
        de.append((t2 - t1) * 1000)
    print(f"cycles_create_rtt_ms {median(cr)}")
    print(f"cycles_destroy_rtt_ms {median(de)}")
    print(f"cycles_errors {errors}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("latency", "cycles"):
        raise SystemExit(__doc__)
    {"latency": latency, "cycles": cycles}[sys.argv[1]](int(sys.argv[2]))
