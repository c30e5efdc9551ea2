#!/usr/bin/python3
"""tests/bench/tools/wifi_bench.py - the WiFi benchmark's bus-side measurements (run in the VM
guest by tests/vm/bench-wifi.sh, on the bus of DBUS_SYSTEM_BUS_ADDRESS), the same for pathman and
ConnMan: both speak net.connman, both drive the same wpa_supplicant. dbus-python + GLib main loop;
all times are CLOCK_MONOTONIC taken in this process when the signal or reply is dispatched.
Prints key=value lines (keys prefixed with the command's --tag) for $VM_OUT/result.txt.

  wifi_bench.py scan --tag T --prefix P --count N [--timeout S]
      Started BEFORE the daemon. Prints "listening" once subscribed, then records every
      fi.w1.wpa_supplicant1.Interface ScanDone and every net.connman Manager ServicesChanged.
      When the N-th service whose object path holds hex(P) is on the bus: T_after_scandone_ms =
      that moment minus the last ScanDone before it (negative: the services came before any
      ScanDone), T_scandones=, T_services=.
  wifi_bench.py connect --tag T --name SSID --rounds R [--settle S]
      R rounds of: Disconnect (when not idle), wait for idle, settle S s, then Service.Connect
      (asynchronously) -> PropertyChanged State ready|online with an IPv4 address. Per round
      T_ready_ms_<r>= and T_reply_ms_<r>= (Connect's method return), T_ready_ms_median=.
  wifi_bench.py roam --tag T --name SSID --ifname IF --server HOST:PORT --bssids A,B
      The service ready, a TCP flow to an echo server (a line every 50 ms, each echoed) and
      two roams (to the other BSSID, then back) with fi.w1.wpa_supplicant1.Interface.Roam.
      Before/after: the service's IPv4, `ip -4 addr` of IF, the IPv4 routes through IF in all
      tables, the default routes of all tables; T_addr_same=, T_routes_same=, T_defaults_same=, T_flow_ok=, T_flow_max_gap_ms=, T_roamN_ms=, T_states=.
  wifi_bench.py services --tag T [--ethernet N] [--timeout S]
      Waits until N ethernet services are ready|online; T_services=, T_wifi_services=,
      T_ethernet_ready=, T_wifi_ready=.
  wifi_bench.py echo-server HOST PORT
      A threaded TCP echo server (for roam).
"""
import argparse
import socket
import subprocess
import sys
import threading
import time

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

WPA = "fi.w1.wpa_supplicant1"
WPA_IF = WPA + ".Interface"
CM = "net.connman"
PROPS = "org.freedesktop.DBus.Properties"

OUT = []


def now():
    return time.monotonic()


def emit(tag, key, value):
    line = "%s_%s=%s" % (tag, key, value)
    OUT.append(line)
    print(line, flush=True)


def median(xs):
    xs = sorted(xs)
    if not xs:
        return "n/a"
    n = len(xs)
    return "%.1f" % (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


def get_bus():
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    return dbus.SystemBus()


def wait_name(bus, name, timeout):
    end = now() + timeout
    while now() < end:
        if bus.name_has_owner(name):
            return True
        time.sleep(0.05)
    return False


def find_service(bus, name, timeout=60.0):
    mgr = dbus.Interface(bus.get_object(CM, "/"), CM + ".Manager")
    end = now() + timeout
    while now() < end:
        for path, props in mgr.GetServices():
            if str(props.get("Name", "")) == name:
                return str(path), props
        time.sleep(0.2)
    return None, None


def run_loop(timeout, done):
    """Dispatch GLib events until done() or timeout seconds (done() is checked after every
    event and every 50 ms; the loop blocks in between, no busy polling)."""
    ctx = GLib.MainContext.default()
    end = now() + timeout
    tick = GLib.timeout_add(50, lambda: True)
    try:
        while not done() and now() < end:
            ctx.iteration(True)
    finally:
        GLib.source_remove(tick)
    return done()


# ------------------------------------------------------------------ scan
def cmd_scan(a):
    bus = get_bus()
    hexp = a.prefix.encode().hex()
    scandones = []
    present = {}
    first_seen = {}
    res = {}

    def note_services(changed, removed):
        t = now()
        for path, _props in changed:
            p = str(path)
            if hexp in p and p not in present:
                present[p] = t
                first_seen.setdefault(p, t)
        for path in removed:
            present.pop(str(path), None)
        if len(present) >= a.count and "t20" not in res:
            res["t20"] = t

    bus.add_signal_receiver(lambda ok, path=None: scandones.append((now(), bool(ok), str(path))),
                            signal_name="ScanDone", dbus_interface=WPA_IF, path_keyword="path")
    bus.add_signal_receiver(note_services, signal_name="ServicesChanged", dbus_interface=CM + ".Manager")

    def owner(name, old, new):
        if name == CM and new:
            res.setdefault("owned", now())
            # services it already had before we saw its first ServicesChanged
            mgr = dbus.Interface(bus.get_object(CM, "/"), CM + ".Manager")
            mgr.GetServices(reply_handler=lambda svcs: note_services(svcs, []),
                            error_handler=lambda e: None)
    bus.add_signal_receiver(owner, signal_name="NameOwnerChanged", dbus_interface="org.freedesktop.DBus")
    t_start = now()
    print("listening", flush=True)
    run_loop(a.timeout, lambda: "t20" in res)
    if "t20" in res:
        # a ScanDone may still follow (services from BSSAdded before the scan finished)
        run_loop(3.0, lambda: any(s[0] >= res["t20"] for s in scandones))
    base = res.get("owned", t_start)
    emit(a.tag, "scandones", ",".join("%.1f%s" % ((s[0] - base) * 1000, "" if s[1] else "(fail)") for s in scandones) or "none")
    emit(a.tag, "services", len(present))
    if "t20" not in res:
        emit(a.tag, "after_scandone_ms", "n/a")
        emit(a.tag, "error", "only %d of %d %s* services within %ss" % (len(present), a.count, a.prefix, a.timeout))
        return 1
    t20 = res["t20"]
    emit(a.tag, "nth_service_ms_after_owned", "%.1f" % ((t20 - base) * 1000))
    before = [s[0] for s in scandones if s[0] <= t20 and s[1]]
    if before:
        emit(a.tag, "after_scandone_ms", "%.1f" % ((t20 - before[-1]) * 1000))
        emit(a.tag, "scandone_ref", "last ScanDone before the %dth service" % a.count)
    else:
        after = [s[0] for s in scandones if s[0] > t20]
        emit(a.tag, "after_scandone_ms", "%.1f" % ((t20 - after[0]) * 1000) if after else "n/a")
        emit(a.tag, "scandone_ref", "first ScanDone after (the services came first)" if after else "no ScanDone seen")
    return 0


# ------------------------------------------------------------------ connect
class Service:
    def __init__(self, bus, path):
        self.bus = bus
        self.path = path
        self.obj = dbus.Interface(bus.get_object(CM, path), CM + ".Service")
        p = self.obj.GetProperties()
        self.state = str(p.get("State", ""))
        self.ipv4 = dict(p.get("IPv4", {}))
        self.log = []   # (t, key, value)
        bus.add_signal_receiver(self.changed, signal_name="PropertyChanged",
                                dbus_interface=CM + ".Service", path=path)

    def changed(self, name, value):
        t = now()
        if name == "State":
            self.state = str(value)
            self.log.append((t, "State", self.state))
        elif name == "IPv4":
            self.ipv4 = dict(value)
            self.log.append((t, "IPv4", str(self.ipv4.get("Address", ""))))

    def addr(self):
        return str(self.ipv4.get("Address", ""))

    def up(self):
        return self.state in ("ready", "online") and self.addr() != ""


def disconnect_idle(svc, timeout=30.0):
    if svc.state not in ("idle", "failure", "disconnect"):
        try:
            svc.obj.Disconnect(timeout=30)
        except dbus.DBusException as e:
            print("# Disconnect: %s" % e, file=sys.stderr)
    return run_loop(timeout, lambda: svc.state in ("idle", "failure"))


def connect_once(svc, timeout=90.0):
    """Connect asynchronously; (ready_s, reply_s or None, error)."""
    box = {}
    t0 = now()
    svc.obj.Connect(timeout=120, reply_handler=lambda: box.setdefault("reply", now()),
                    error_handler=lambda e: box.setdefault("error", (now(), str(e))))
    mark = len(svc.log)
    ok = run_loop(timeout, lambda: svc.up() or "error" in box)
    t_ready = None
    if svc.up():
        # the moment it became so: the last State/IPv4 change at or after t0 that made it up
        t_ready = svc.log[-1][0] if len(svc.log) > mark else now()
        run_loop(10.0, lambda: "reply" in box or "error" in box)
    del ok
    return t0, t_ready, box


def cmd_connect(a):
    bus = get_bus()
    if not wait_name(bus, CM, 30):
        emit(a.tag, "error", "no net.connman")
        return 1
    path, _ = find_service(bus, a.name)
    if not path:
        emit(a.tag, "error", "no service %s" % a.name)
        return 1
    emit(a.tag, "service", path.rsplit("/", 1)[-1])
    svc = Service(bus, path)
    try:
        svc.obj.SetProperty("AutoConnect", dbus.Boolean(False, variant_level=1))
    except dbus.DBusException as e:
        print("# SetProperty AutoConnect: %s" % e, file=sys.stderr)
    ready, replies, fails = [], [], 0
    for r in range(1, a.rounds + 1):
        if not disconnect_idle(svc):
            emit(a.tag, "round%d" % r, "not idle after Disconnect (state %s)" % svc.state)
            fails += 1
            continue
        run_loop(a.settle, lambda: False)
        t0, t_ready, box = connect_once(svc)
        if t_ready is None:
            fails += 1
            emit(a.tag, "round%d" % r, "not ready (state %s, addr '%s', %s)" % (
                svc.state, svc.addr(), box.get("error", ("", "no error reply"))[1]))
            continue
        ready.append((t_ready - t0) * 1000)
        emit(a.tag, "ready_ms_%d" % r, "%.1f" % ready[-1])
        if "reply" in box:
            replies.append((box["reply"] - t0) * 1000)
            emit(a.tag, "reply_ms_%d" % r, "%.1f" % replies[-1])
        else:
            emit(a.tag, "reply_ms_%d" % r, "none (%s)" % box.get("error", ("", "no reply"))[1])
        emit(a.tag, "addr_%d" % r, svc.addr())
        emit(a.tag, "states_%d" % r, ",".join("%s@%.0f" % (v, (t - t0) * 1000) for (t, k, v) in svc.log if t >= t0 and k == "State"))
    emit(a.tag, "ready_ms_median", median(ready))
    emit(a.tag, "reply_ms_median", median(replies))
    emit(a.tag, "rounds_ok", "%d/%d" % (len(ready), a.rounds))
    # leave it connected (VmHWM with one wifi service up, roaming next)
    if not svc.up():
        connect_once(svc)
    emit(a.tag, "final_state", svc.state)
    return 0 if ready else 1


# ------------------------------------------------------------------ roam
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except Exception as e:  # noqa: BLE001 - reported as the value
        return "error: %s" % e


def routes(ifname):
    """The IPv4 routes through IF in every table (the local table's left out)."""
    lines = []
    for l in sh("ip", "-4", "route", "show", "table", "all", "dev", ifname).splitlines():
        if "table local" in l or l.startswith(("local ", "broadcast ")):
            continue
        lines.append(l.strip())
    return sorted(lines)


def defaults():
    return sorted(l.strip() for l in sh("ip", "-4", "route", "show", "table", "all", "default").splitlines())


def addrs(ifname):
    return sorted(" ".join(l.split()[2:5]) for l in sh("ip", "-4", "-o", "addr", "show", "dev", ifname).splitlines())


def mac(raw):
    return ":".join("%02x" % int(x) for x in raw)


class Flow(threading.Thread):
    def __init__(self, host, port):
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.stop = False
        self.echoes = []
        self.error = None
        self.sent = 0

    def run(self):
        try:
            s = socket.create_connection((self.host, self.port), timeout=10)
            s.settimeout(15)
            f = s.makefile("rb")
            while not self.stop:
                self.sent += 1
                s.sendall(b"%d\n" % self.sent)
                line = f.readline()
                if not line:
                    self.error = "EOF after %d echoes" % len(self.echoes)
                    return
                self.echoes.append(now())
                time.sleep(0.05)
            s.close()
        except Exception as e:  # noqa: BLE001 - the finding
            self.error = "%s after %d echoes" % (e, len(self.echoes))


def cmd_roam(a):
    bus = get_bus()
    path, _ = find_service(bus, a.name, 30)
    if not path:
        emit(a.tag, "error", "no service %s" % a.name)
        return 1
    svc = Service(bus, path)
    if not svc.up():
        connect_once(svc)
    if not svc.up():
        emit(a.tag, "error", "service not ready (%s)" % svc.state)
        return 1
    root = dbus.Interface(bus.get_object(WPA, "/fi/w1/wpa_supplicant1"), WPA)
    ipath = root.GetInterface(a.ifname)
    iobj = bus.get_object(WPA, ipath)
    wif = dbus.Interface(iobj, WPA_IF)

    def cur_bssid():
        p = iobj.Get(WPA_IF, "CurrentBSS", dbus_interface=PROPS)
        if str(p) == "/":
            return ""
        return mac(bus.get_object(WPA, p).Get(WPA + ".BSS", "BSSID", dbus_interface=PROPS))

    def wpa_state():
        return str(iobj.Get(WPA_IF, "State", dbus_interface=PROPS))

    bssids = [b.lower() for b in a.bssids.split(",")]
    before = {"svc": svc.addr(), "addr": addrs(a.ifname), "routes": routes(a.ifname), "def": defaults()}
    emit(a.tag, "addr_before", svc.addr())
    emit(a.tag, "ifaddr_before", ";".join(before["addr"]))
    flow = Flow(*a.server.rsplit(":", 1)[:1], int(a.server.rsplit(":", 1)[1]))
    flow.start()
    run_loop(2.0, lambda: False)
    t_flow0 = now()
    mark = len(svc.log)
    ok_all = True
    for n in (1, 2):
        start_bss = cur_bssid()
        target = [b for b in bssids if b != start_bss][0]
        emit(a.tag, "roam%d_from_to" % n, "%s>%s" % (start_bss or "none", target))
        t0 = now()
        err = None
        for attempt in range(3):
            try:
                wif.Roam(target)
                err = None
                break
            except dbus.DBusException as e:
                err = str(e)
                # the target BSS aged out of the table: one active scan, then again
                try:
                    wif.Scan({"Type": "active"})
                except dbus.DBusException:
                    pass
                run_loop(5.0, lambda: False)
        if err:
            emit(a.tag, "roam%d_error" % n, err)
            ok_all = False
            continue
        done = run_loop(30.0, lambda: cur_bssid() == target and wpa_state() == "completed")
        emit(a.tag, "roam%d_ms" % n, "%.1f" % ((now() - t0) * 1000) if done else "not completed (%s %s)" % (cur_bssid(), wpa_state()))
        ok_all = ok_all and done
        run_loop(4.0, lambda: False)   # let the daemon react (or not) and the flow run on
    flow.stop = True
    flow.join(20)
    after = {"svc": svc.addr(), "addr": addrs(a.ifname), "routes": routes(a.ifname), "def": defaults()}
    emit(a.tag, "roams_ok", "yes" if ok_all else "no")
    emit(a.tag, "addr_after", svc.addr())
    emit(a.tag, "ifaddr_after", ";".join(after["addr"]))
    emit(a.tag, "addr_same", "yes" if before["svc"] == after["svc"] and before["addr"] == after["addr"] else "no")
    emit(a.tag, "routes_same", "yes" if before["routes"] == after["routes"] else "no")
    if before["routes"] != after["routes"]:
        emit(a.tag, "routes_before", " | ".join(before["routes"]))
        emit(a.tag, "routes_after", " | ".join(after["routes"]))
    emit(a.tag, "wlan_routes", " | ".join(after["routes"]) or "none")
    emit(a.tag, "defaults_same", "yes" if before["def"] == after["def"] else "no")
    emit(a.tag, "default_routes", " | ".join(after["def"]) or "none")
    if before["def"] != after["def"]:
        emit(a.tag, "default_routes_before", " | ".join(before["def"]) or "none")
    ev = [t for t in flow.echoes if t >= t_flow0]
    gaps = [(b - x) * 1000 for x, b in zip([t_flow0] + ev, ev)]
    emit(a.tag, "flow_echoes", len(flow.echoes))
    emit(a.tag, "flow_error", flow.error or "none")
    emit(a.tag, "flow_ok", "yes" if flow.error is None and len(ev) > 0 and ok_all else "no")
    emit(a.tag, "flow_max_gap_ms", "%.1f" % max(gaps) if gaps else "n/a")
    emit(a.tag, "states", ",".join("%s=%s" % (k, v) for (_t, k, v) in svc.log[mark:]) or "none")
    return 0


def cmd_services(a):
    bus = get_bus()
    mgr = dbus.Interface(bus.get_object(CM, "/"), CM + ".Manager")

    def count():
        svcs = mgr.GetServices()
        up = lambda p: str(p.get("State", "")) in ("ready", "online")
        return {
            "services": len(svcs),
            "wifi_services": sum(1 for _s, p in svcs if str(p.get("Type", "")) == "wifi"),
            "ethernet_ready": sum(1 for _s, p in svcs if str(p.get("Type", "")) == "ethernet" and up(p)),
            "wifi_ready": sum(1 for _s, p in svcs if str(p.get("Type", "")) == "wifi" and up(p)),
        }
    end = now() + a.timeout
    c = count()
    while c["ethernet_ready"] < a.ethernet and now() < end:
        time.sleep(0.5)
        c = count()
    for k, v in c.items():
        emit(a.tag, k, v)
    return 0 if c["ethernet_ready"] >= a.ethernet else 1


def cmd_echo_server(a):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.host, a.port))
    srv.listen(8)
    print("listening", flush=True)

    def serve(c):
        with c:
            while True:
                d = c.recv(4096)
                if not d:
                    return
                c.sendall(d)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scan")
    s.add_argument("--tag", required=True)
    s.add_argument("--prefix", required=True)
    s.add_argument("--count", type=int, default=20)
    s.add_argument("--timeout", type=float, default=120)
    c = sub.add_parser("connect")
    c.add_argument("--tag", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--rounds", type=int, default=5)
    c.add_argument("--settle", type=float, default=2.0)
    r = sub.add_parser("roam")
    r.add_argument("--tag", required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--ifname", default="wlan0")
    r.add_argument("--server", required=True)
    r.add_argument("--bssids", required=True)
    v = sub.add_parser("services")
    v.add_argument("--tag", required=True)
    v.add_argument("--ethernet", type=int, default=2)
    v.add_argument("--timeout", type=float, default=60)
    e = sub.add_parser("echo-server")
    e.add_argument("host")
    e.add_argument("port", type=int)
    a = ap.parse_args()
    return {"scan": cmd_scan, "connect": cmd_connect, "roam": cmd_roam, "services": cmd_services, "echo-server": cmd_echo_server}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
