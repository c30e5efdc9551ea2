#!/usr/bin/python3
"""tests/lab/hostile_dhcp.py - a small DHCPv4 server (stdlib only) that sends what dnsmasq
cannot be made to send: any yiaddr (127.0.0.1, 240.0.0.1, the subnet's network/broadcast
address, its own), any mask, 0.0.0.0 routers and DNS servers, 1 s leases, options split
over several instances (RFC 3396), NAKs to every REQUEST.

With no hostile option it is a plain, valid server (the lab test checks pathman gets a
normal lease from it), so a rejected hostile lease is the lease's fault, not the server's.

Every message received and sent is logged, one line each, to --log:
    <monotonic seconds> recv DISCOVER xid=0x1234abcd ciaddr=0.0.0.0 requested=-
    <monotonic seconds> sent OFFER yiaddr=198.18.1.150 to 255.255.255.255

Usage (in the upstream namespace; lab.sh standin starts it):
    hostile_dhcp.py --iface down0 --server 198.18.1.1 --log FILE
        [--yiaddr A] [--ack-yiaddr A] [--mask M] [--router A[,A..]|none]
        [--dns A[,A..]|none] [--ntp A[,A..]|none] [--domain NAME]
        [--lease S] [--t1 S] [--t2 S] [--nak] [--option CODE=HEX]...
"""
import argparse
import ipaddress
import socket
import struct
import sys
import time

MAGIC = b"\x63\x82\x53\x63"
TYPES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK",
         7: "RELEASE", 8: "INFORM"}
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


def ip4(s):
    return ipaddress.IPv4Address(s).packed


def addr_list(s):
    if s is None or s == "none":
        return None
    return b"".join(ip4(a) for a in s.split(",") if a)


def parse_options(data):
    """Options of a client message: {code: bytes}, instances concatenated (RFC 3396)."""
    out, i = {}, 0
    while i < len(data):
        code = data[i]
        if code == 0:
            i += 1
            continue
        if code == 255 or i + 1 >= len(data):
            break
        n = data[i + 1]
        out[code] = out.get(code, b"") + data[i + 2:i + 2 + n]
        i += 2 + n
    return out


def opt(code, value):
    """One option, split into 255-byte instances when longer (RFC 3396)."""
    if not value:
        return bytes([code, 0])
    return b"".join(bytes([code, len(value[i:i + 255])]) + value[i:i + 255]
                    for i in range(0, len(value), 255))


class Server:
    def __init__(self, a):
        self.a = a
        self.log = open(a.log, "a", buffering=1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, a.iface.encode())
        self.sock.bind(("0.0.0.0", 67))

    def note(self, line):
        self.log.write("%.3f %s\n" % (time.monotonic(), line))

    def options(self, mtype):
        a = self.a
        o = opt(53, bytes([mtype])) + opt(54, ip4(a.server))
        if mtype == 6:
            return o
        o += opt(51, struct.pack("!I", a.lease))
        if a.t1 is not None:
            o += opt(58, struct.pack("!I", a.t1))
        if a.t2 is not None:
            o += opt(59, struct.pack("!I", a.t2))
        if a.mask != "none":
            o += opt(1, ip4(a.mask))
        for code, value in ((3, addr_list(a.router)), (6, addr_list(a.dns)),
                            (42, addr_list(a.ntp))):
            if value is not None:
                o += opt(code, value)
        if a.domain:
            o += opt(15, a.domain.encode())
        # Raw instances exactly as given, in order: several of one code make a split option.
        for spec in a.option:
            code, _, hexval = spec.partition("=")
            value = bytes.fromhex(hexval)
            o += bytes([int(code), len(value)]) + value
        return o

    def reply(self, req, mtype, yiaddr):
        xid, flags, ciaddr, chaddr = req[4:8], req[10:12], req[12:16], req[28:44]
        hdr = bytes([2, 1, 6, 0]) + xid + b"\0\0" + flags + ciaddr
        hdr += (ip4(yiaddr) if mtype != 6 else b"\0" * 4) + ip4(self.a.server) + b"\0" * 4
        hdr += chaddr + b"\0" * 192
        msg = hdr + MAGIC + self.options(mtype) + b"\xff"
        msg += b"\0" * max(0, 300 - len(msg))
        # A renewing client (ciaddr set) listens on its address; others on broadcast.
        dst = socket.inet_ntoa(ciaddr) if ciaddr != b"\0" * 4 and mtype != 6 else "255.255.255.255"
        self.sock.sendto(msg, (dst, 68))
        self.note("sent %s yiaddr=%s to %s" % (TYPES[mtype], yiaddr if mtype != 6 else "-", dst))

    def serve(self):
        self.note("listening on %s as %s" % (self.a.iface, self.a.server))
        while True:
            data, _ = self.sock.recvfrom(2048)
            if len(data) < 240 or data[0] != 1 or data[236:240] != MAGIC:
                continue
            o = parse_options(data[240:])
            mtype = o.get(53, b"\0")[0]
            req = o.get(50)
            self.note("recv %s xid=0x%s ciaddr=%s requested=%s" % (
                TYPES.get(mtype, str(mtype)), data[4:8].hex(), socket.inet_ntoa(data[12:16]),
                socket.inet_ntoa(req) if req and len(req) == 4 else "-"))
            if mtype == 1:
                self.reply(data, 2, self.a.yiaddr)
            elif mtype == 3:
                if self.a.nak:
                    self.reply(data, 6, None)
                else:
                    self.reply(data, 5, self.a.ack_yiaddr or self.a.yiaddr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iface", required=True)
    p.add_argument("--server", required=True, help="our address, sent as option 54")
    p.add_argument("--log", required=True)
    p.add_argument("--yiaddr", default=None, help="address offered (default: server's /24 .150)")
    p.add_argument("--ack-yiaddr", default=None, help="address in ACKs if not the offered one")
    p.add_argument("--mask", default="255.255.255.0", help="option 1, or none")
    p.add_argument("--router", default=None, help="option 3 (default: the server), or none")
    p.add_argument("--dns", default=None, help="option 6 (default: the server), or none")
    p.add_argument("--ntp", default="none", help="option 42, or none")
    p.add_argument("--domain", default=None, help="option 15 in one instance")
    p.add_argument("--lease", type=int, default=3600)
    p.add_argument("--t1", type=int, default=None)
    p.add_argument("--t2", type=int, default=None)
    p.add_argument("--nak", action="store_true", help="NAK every REQUEST")
    p.add_argument("--option", action="append", default=[], metavar="CODE=HEX",
                   help="one raw option instance (repeat a code to split a value)")
    a = p.parse_args()
    net = ipaddress.IPv4Interface(a.server + "/24").network
    if a.yiaddr is None:
        a.yiaddr = str(net.network_address + 150)
    if a.router is None:
        a.router = a.server
    if a.dns is None:
        a.dns = a.server
    Server(a).serve()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
