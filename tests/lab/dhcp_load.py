#!/usr/bin/python3
"""tests/lab/dhcp_load.py - many DHCP clients from one namespace, for loading and attacking
a DHCP server (stdlib only, root). One AF_PACKET socket on --iface carries every client:
each has its own chaddr (locally administered, 02:dd:<seed>:<index>), frames are built
here (Ethernet + IPv4 + UDP), replies are taken whether broadcast or sent to the client's
MAC, and ARP requests for a client's leased address are answered, so a server can unicast
renewals' ACKs to it.

Subcommands (each prints one summary line per phase and exits non-zero on any error):
  load  --count N [--renew] [--release] [--json FILE]
        N clients DISCOVER -> OFFER -> REQUEST (SELECTING) -> ACK at once, with
        retransmission; then RENEW (unicast REQUEST with ciaddr) and RELEASE. Reports
        errors (NAK, timeout, an address given twice, an address outside the server's
        subnet) and DISCOVER->OFFER / DISCOVER->ACK latency (min/median/p95/max ms).
  hostile --server-ip A
        sends hostile client packets (truncated, bad magic, an option running past the
        end, a frame full of 255-byte options, option overload loops, requested address
        outside the subnet and the server's own, a 255-byte client id, REQUEST for another
        server, DECLINE/RELEASE of addresses never held, BOOTREPLY from a client, bad
        htype/hlen), then one normal DORA must get an ACK.
  flood --rate R --seconds S
        DISCOVERs from random MACs at R per second, then one normal DORA must get an ACK.
  decline
        DORA, DECLINE the address, DORA again with the same MAC: a different address.
  first-offer [--interval-ms I] [--max-seconds S]
        one client sends a DISCOVER every I ms (default 1) until an OFFER comes; prints
        the CLOCK_MONOTONIC nanoseconds at which it came (the benchmark's clock: the
        same in every namespace).

Checked against a real server first: tests/tether_lab.rs runs load (with renew and
release), decline and hostile against the lab's dnsmasq (2.90 here) and requires them to
pass, before the same subcommands judge pathman's server.
"""
import argparse
import json
import os
import random
import select
import socket
import statistics
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
MAGIC = b"\x63\x82\x53\x63"
BCAST_MAC = b"\xff" * 6
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src_mac, dst_mac, src_ip, dst_ip, payload, sport=68, dport=67):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + ip + udp


def bootp(mac, xid, mtype, ciaddr="0.0.0.0", opts=b"", flags=0, op=1, htype=1, hlen=6,
          magic=MAGIC):
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, htype, hlen, 0, xid, 0, flags,
                       socket.inet_aton(ciaddr), b"\0" * 4, b"\0" * 4, b"\0" * 4,
                       mac + b"\0" * 10, b"", b"")
    body = head + magic
    if mtype is not None:
        body += bytes([53, 1, mtype])
    body += opts + b"\xff"
    return body + b"\0" * max(0, 300 - len(body))


def opt(code, data):
    return bytes([code, len(data)]) + data


def parse(pkt):
    """(src_mac, dst_mac, msg dict) of a DHCP reply in an Ethernet frame, else None."""
    if len(pkt) < 14 + 20 + 8 + 240 or struct.unpack("!H", pkt[12:14])[0] != ETH_P_IP:
        return None
    ip = pkt[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17:
        return None
    udp = ip[ihl:]
    if struct.unpack("!H", udp[2:4])[0] != 68:
        return None
    d = udp[8:]
    if len(d) < 240 or d[236:240] != MAGIC or d[0] != 2:
        return None
    m = {"xid": struct.unpack("!I", d[4:8])[0], "yiaddr": socket.inet_ntoa(d[16:20]),
         "chaddr": d[28:34], "opts": {}}
    i = 240
    while i < len(d) and d[i] != 255:
        if d[i] == 0:
            i += 1
            continue
        if i + 1 >= len(d):
            break
        code, n = d[i], d[i + 1]
        m["opts"][code] = d[i + 2:i + 2 + n]
        i += 2 + n
    mt = m["opts"].get(53, b"\0")
    m["type"] = mt[0] if mt else 0
    sid = m["opts"].get(54)
    m["server"] = socket.inet_ntoa(sid) if sid and len(sid) == 4 else None
    mask = m["opts"].get(1)
    m["mask"] = socket.inet_ntoa(mask) if mask and len(mask) == 4 else None
    return pkt[6:12], pkt[0:6], m


class Net:
    def __init__(self, iface):
        self.iface = iface
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.bind((iface, 0))
        # SO_RCVBUFFORCE (root): past rmem_max, so a burst of 200 replies is not dropped here.
        self.s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
        self.s.setblocking(False)
        # Replies go to each fake client's MAC: see them all.
        os.system("ip link set %s promisc on" % iface)
        self.arp_for = {}   # ip -> mac: answer ARP requests for leased addresses

    def send(self, data):
        try:
            self.s.send(data)
        except BlockingIOError:
            select.select([], [self.s], [], 0.05)
            self.s.send(data)

    def recv(self, timeout):
        r, _, _ = select.select([self.s], [], [], max(0.0, timeout))
        out = []
        if not r:
            return out
        while True:
            try:
                pkt = self.s.recv(2048)
            except BlockingIOError:
                return out
            if len(pkt) >= 42 and pkt[12:14] == b"\x08\x06":
                self.arp(pkt)
                continue
            p = parse(pkt)
            if p:
                out.append(p)

    def arp(self, pkt):
        a = pkt[14:]
        if struct.unpack("!H", a[6:8])[0] != 1:
            return
        tip = socket.inet_ntoa(a[24:28])
        mac = self.arp_for.get(tip)
        if mac is None:
            return
        rep = (a[8:14] + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2)
               + mac + a[24:28] + a[8:14] + a[14:18])
        self.send(rep)


class Client:
    def __init__(self, seed, i):
        self.mac = bytes([2, 0xdd, seed & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff])
        self.xid = random.getrandbits(32)
        self.state = "init"
        self.addr = None
        self.server = None
        self.server_mac = None
        self.t0 = None
        self.t_offer = None
        self.t_ack = None
        self.tries = 0
        self.next_at = 0.0
        self.error = None


def mac_text(m):
    return ":".join("%02x" % b for b in m)


def in_subnet(addr, server, mask):
    a, s, m = (struct.unpack("!I", socket.inet_aton(x))[0] for x in (addr, server, mask))
    return a & m == s & m


def run_phase(net, clients, phase, timeout, retry=1.0, tries=4):
    """Drives every client through `phase` (dora, renew, release) at once."""
    now = time.monotonic()
    for c in clients:
        c.tries, c.next_at, c.error = 0, now, None
        c.state = {"dora": "discover", "renew": "renew", "release": "release"}[phase]
    deadline = now + timeout
    by_mac = {c.mac: c for c in clients}
    while True:
        now = time.monotonic()
        pending = [c for c in clients if c.state not in ("done", "failed")]
        if not pending or now > deadline:
            break
        for c in pending:
            if now < c.next_at:
                continue
            if c.tries >= tries:
                c.state, c.error = "failed", "timeout in " + c.state
                continue
            c.tries += 1
            c.next_at = now + retry
            if c.state == "discover":
                if c.tries == 1:
                    c.t0 = now
                net.send(frame(c.mac, BCAST_MAC, "0.0.0.0", "255.255.255.255",
                               bootp(c.mac, c.xid, DISCOVER, opts=opt(61, b"\x01" + c.mac))))
            elif c.state == "request":
                net.send(frame(c.mac, BCAST_MAC, "0.0.0.0", "255.255.255.255",
                               bootp(c.mac, c.xid, REQUEST, opts=opt(61, b"\x01" + c.mac)
                                     + opt(50, socket.inet_aton(c.addr))
                                     + opt(54, socket.inet_aton(c.server)))))
            elif c.state == "renew":
                if c.tries == 1:
                    c.t0 = now
                net.send(frame(c.mac, c.server_mac, c.addr, c.server,
                               bootp(c.mac, c.xid, REQUEST, ciaddr=c.addr,
                                     opts=opt(61, b"\x01" + c.mac))))
            elif c.state == "release":
                net.send(frame(c.mac, c.server_mac, c.addr, c.server,
                               bootp(c.mac, c.xid, RELEASE, ciaddr=c.addr,
                                     opts=opt(61, b"\x01" + c.mac)
                                     + opt(54, socket.inet_aton(c.server)))))
                net.arp_for.pop(c.addr, None)
                c.state = "done"
        wait = min([c.next_at for c in clients if c.state not in ("done", "failed")] or [now + 0.01])
        for src_mac, _, m in net.recv(min(0.05, wait - time.monotonic())):
            c = by_mac.get(m["chaddr"])
            if c is None or m["xid"] != c.xid:
                continue
            t = time.monotonic()
            if m["type"] == NAK:
                c.state, c.error = "failed", "NAK in " + c.state
            elif c.state == "discover" and m["type"] == OFFER:
                c.addr, c.server, c.server_mac = m["yiaddr"], m["server"], src_mac
                c.mask = m["mask"] or "255.255.255.0"
                c.t_offer = t
                c.state, c.tries, c.next_at = "request", 0, t
            elif c.state in ("request", "renew") and m["type"] == ACK:
                if m["yiaddr"] != c.addr:
                    c.state, c.error = "failed", "ACK of %s, not %s" % (m["yiaddr"], c.addr)
                    continue
                c.t_ack = t
                net.arp_for[c.addr] = c.mac
                c.state = "done"
    for c in clients:
        if c.state != "done" and not c.error:
            c.state, c.error = "failed", "timeout in " + c.state


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else float("nan")


def stats(v):
    if not v:
        return {"n": 0}
    return {"n": len(v), "min": min(v), "median": statistics.median(v), "p95": pct(v, 95),
            "max": max(v)}


def fmt(s):
    if not s.get("n"):
        return "n=0"
    return "n=%d min %.2f median %.2f p95 %.2f max %.2f ms" % (
        s["n"], s["min"], s["median"], s["p95"], s["max"])


def cmd_load(a):
    net = Net(a.iface)
    clients = [Client(a.seed, i) for i in range(a.count)]
    report = {"count": a.count}
    errors = 0
    t = time.monotonic()
    run_phase(net, clients, "dora", a.timeout)
    ok = [c for c in clients if c.state == "done"]
    errs = [c.error for c in clients if c.state != "done"]
    addrs = [c.addr for c in ok]
    if len(set(addrs)) != len(addrs):
        errs.append("an address given twice")
    for c in ok:
        if not in_subnet(c.addr, c.server, c.mask):
            errs.append("%s outside the server's subnet" % c.addr)
    offer = [(c.t_offer - c.t0) * 1000 for c in ok]
    ack = [(c.t_ack - c.t0) * 1000 for c in ok]
    report["dora"] = {"ok": len(ok), "errors": errs, "offer_ms": stats(offer),
                      "ack_ms": stats(ack), "seconds": time.monotonic() - t}
    print("dora: %d/%d ok, %d errors; DISCOVER->OFFER %s; DISCOVER->ACK %s; %.2f s"
          % (len(ok), a.count, len(errs), fmt(stats(offer)), fmt(stats(ack)),
             report["dora"]["seconds"]))
    errors += len(errs)
    for e in errs[:10]:
        print("  error: " + e)
    if a.renew:
        t = time.monotonic()
        run_phase(net, ok, "renew", a.timeout)
        errs = [c.error for c in ok if c.state != "done"]
        lat = [(c.t_ack - c.t0) * 1000 for c in ok if c.state == "done"]
        report["renew"] = {"ok": len(ok) - len(errs), "errors": errs, "ack_ms": stats(lat),
                           "seconds": time.monotonic() - t}
        print("renew: %d/%d ok, %d errors; REQUEST->ACK %s" % (len(ok) - len(errs), len(ok),
                                                              len(errs), fmt(stats(lat))))
        errors += len(errs)
        for e in errs[:10]:
            print("  error: " + e)
    if a.release:
        run_phase(net, [c for c in ok if c.state == "done"], "release", a.timeout)
        print("release: %d sent" % len(ok))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if errors else 0


def one_dora(net, seed, index, timeout=5.0):
    c = Client(seed, index)
    run_phase(net, [c], "dora", timeout)
    return c


def cmd_hostile(a):
    net = Net(a.iface)
    rnd = random.Random(a.seed)
    mac = lambda: bytes([2, 0xee, rnd.getrandbits(8), rnd.getrandbits(8), rnd.getrandbits(8),
                         rnd.getrandbits(8)])
    sip = socket.inet_aton(a.server_ip)
    far = socket.inet_aton("10.99.99.99")
    big = b"".join(opt(200 + (i % 50), b"\xaa" * 255) for i in range(4))
    loop = bootp(mac(), 1, DISCOVER, opts=opt(52, b"\x03"))
    loop = bytearray(loop)
    # file (108..236) and sname (44..108) both say "overload" again.
    loop[108:112] = bytes([52, 1, 3, 255])
    loop[44:48] = bytes([52, 1, 3, 255])
    m = mac()
    cases = [
        ("truncated BOOTP (100 bytes)", bootp(mac(), 2, DISCOVER)[:100]),
        ("bad magic cookie", bootp(mac(), 3, DISCOVER, magic=b"\x01\x02\x03\x04")),
        ("option running past the end", bootp(mac(), 4, DISCOVER)[:240] + bytes([53, 1, 1, 12, 200, 65])),
        ("a frame full of 255-byte options", bootp(mac(), 5, DISCOVER, opts=big)),
        ("option overload loop", bytes(loop)),
        ("requested address off the subnet", bootp(mac(), 6, DISCOVER, opts=opt(50, far))),
        ("requested address = the server's", bootp(mac(), 7, DISCOVER, opts=opt(50, sip))),
        ("255-byte client id", bootp(mac(), 8, DISCOVER, opts=opt(61, b"\x01" + b"\x42" * 254))),
        ("REQUEST for another server", bootp(m, 9, REQUEST, opts=opt(50, sip) + opt(54, far))),
        ("DECLINE of an address never held", bootp(mac(), 10, DECLINE, opts=opt(50, sip) + opt(54, sip))),
        ("RELEASE of an address never held", bootp(mac(), 11, RELEASE, ciaddr=a.server_ip, opts=opt(54, sip))),
        ("BOOTREPLY from a client", bootp(mac(), 12, OFFER, op=2)),
        ("htype 6 hlen 16", bootp(mac(), 13, DISCOVER, htype=6, hlen=16)),
        ("no message type", bootp(mac(), 14, None)),
        ("message type 99", bootp(mac(), 15, 99)),
    ]
    for name, payload in cases:
        for _ in range(3):
            net.send(frame(mac(), BCAST_MAC, "0.0.0.0", "255.255.255.255", payload))
        print("sent: " + name)
    net.recv(0.2)
    c = one_dora(net, a.seed, 1)
    if c.state != "done":
        print("FAILED: no lease after the hostile packets: %s" % c.error)
        return 1
    print("after them: %s leased %s" % (mac_text(c.mac), c.addr))
    return 0


def cmd_flood(a):
    net = Net(a.iface)
    rnd = random.Random(a.seed)
    end = time.monotonic() + a.seconds
    sent = offers = 0
    start = time.monotonic()
    while time.monotonic() < end:
        due = int((time.monotonic() - start) * a.rate)
        while sent < due:
            m = bytes([2, 0xfd, rnd.getrandbits(8), rnd.getrandbits(8), rnd.getrandbits(8),
                       rnd.getrandbits(8)])
            net.send(frame(m, BCAST_MAC, "0.0.0.0", "255.255.255.255",
                           bootp(m, rnd.getrandbits(32), DISCOVER)))
            sent += 1
        offers += sum(1 for _, _, x in net.recv(0.0005) if x["type"] == OFFER)
    took = time.monotonic() - start
    print("flood: %d DISCOVERs in %.2f s (%.0f/s), %d offers seen" % (sent, took, sent / took, offers))
    net.recv(0.2)
    c = one_dora(net, a.seed, 7, timeout=8.0)
    if c.state != "done":
        print("FAILED: a real client got no lease after the flood: %s" % c.error)
        return 1
    print("after it: %s leased %s" % (mac_text(c.mac), c.addr))
    return 0


def cmd_decline(a):
    net = Net(a.iface)
    c = one_dora(net, a.seed, 3)
    if c.state != "done":
        print("FAILED: first lease: %s" % c.error)
        return 1
    first = c.addr
    net.send(frame(c.mac, BCAST_MAC, "0.0.0.0", "255.255.255.255",
                   bootp(c.mac, c.xid, DECLINE, opts=opt(61, b"\x01" + c.mac)
                         + opt(50, socket.inet_aton(first)) + opt(54, socket.inet_aton(c.server)))))
    net.arp_for.pop(first, None)
    c2 = one_dora(net, a.seed, 3)
    if c2.state != "done":
        print("FAILED: second lease: %s" % c2.error)
        return 1
    print("declined %s, then leased %s" % (first, c2.addr))
    return 0 if c2.addr != first else 1


def cmd_first_offer(a):
    net = Net(a.iface)
    c = Client(a.seed, 11)
    end = time.monotonic() + a.max_seconds
    pkt = frame(c.mac, BCAST_MAC, "0.0.0.0", "255.255.255.255", bootp(c.mac, c.xid, DISCOVER))
    print("ready", flush=True)
    while time.monotonic() < end:
        net.send(pkt)
        for _, _, m in net.recv(a.interval_ms / 1000.0):
            if m["xid"] == c.xid and m["type"] == OFFER:
                print(time.monotonic_ns(), flush=True)
                return 0
    print("no offer")
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iface", default="eth0")
    p.add_argument("--seed", type=int, default=1)
    sub = p.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("load")
    l.add_argument("--count", type=int, default=200)
    l.add_argument("--renew", action="store_true")
    l.add_argument("--release", action="store_true")
    l.add_argument("--timeout", type=float, default=20.0)
    l.add_argument("--json")
    h = sub.add_parser("hostile")
    h.add_argument("--server-ip", required=True)
    f = sub.add_parser("flood")
    f.add_argument("--rate", type=float, default=10000)
    f.add_argument("--seconds", type=float, default=2)
    sub.add_parser("decline")
    fo = sub.add_parser("first-offer")
    fo.add_argument("--interval-ms", type=float, default=1.0)
    fo.add_argument("--max-seconds", type=float, default=10.0)
    a = p.parse_args()
    sys.exit({"load": cmd_load, "hostile": cmd_hostile, "flood": cmd_flood,
              "decline": cmd_decline, "first-offer": cmd_first_offer}[a.cmd](a))


if __name__ == "__main__":
    main()
