#!/usr/bin/python3
"""Writes fuzz seeds from real sources (run by fuzz/seeds/capture.sh; see fuzz/README.md).

  capture.py pcap DIR FILE...   frames of Ethernet pcaps -> DIR/{dhcpv4,ipv4udp,arp}/
  capture.py netlink DIR        in the current netns: rtnetlink dumps (links, addresses,
                                routes, rules) and mptcp_pm replies (endpoints, limits),
                                each kernel datagram as it arrived -> DIR/{rtnl,mptcp}/
  capture.py events DIR SECS    rtnetlink multicast datagrams for SECS seconds -> DIR/rtnl/
  capture.py dbus DIR           D-Bus bodies marshalled by GLib (an independent
                                implementation) for the calls pathman decodes -> DIR/dbus_value/
"""
import hashlib
import os
import socket
import struct
import sys
import time


def save(d, name, data):
    os.makedirs(d, exist_ok=True)
    h = hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(d, f"{name}-{h}"), "wb") as f:
        f.write(data)


def pcap_frames(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        linktype = struct.unpack(e + "I", hdr[20:24])[0]
        if linktype != 1:
            raise SystemExit(f"{path}: link type {linktype}, want Ethernet (1)")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            incl = struct.unpack(e + "IIII", rec)[2]
            yield f.read(incl)


def cmd_pcap(out, files):
    n = 0
    for p in files:
        for fr in pcap_frames(p):
            ethertype = struct.unpack(">H", fr[12:14])[0]
            payload = fr[14:]
            if ethertype == 0x0806:
                save(f"{out}/arp", "arp", payload[:28])
                n += 1
            elif ethertype == 0x0800 and len(payload) >= 28 and payload[9] == 17:
                ihl = (payload[0] & 15) * 4
                sport, dport = struct.unpack(">HH", payload[ihl:ihl + 4])
                if {sport, dport} <= {67, 68}:
                    kind = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack",
                            6: "nak", 7: "release", 8: "inform"}
                    dhcp = payload[ihl + 8:]
                    mt = "dhcp"
                    i = 240
                    while i + 1 < len(dhcp) and dhcp[i] != 255:
                        if dhcp[i] == 0:
                            i += 1
                            continue
                        if dhcp[i] == 53 and i + 2 < len(dhcp):
                            mt = kind.get(dhcp[i + 2], "dhcp")
                        i += 2 + dhcp[i + 1]
                    save(f"{out}/dhcpv4", mt, dhcp)
                    save(f"{out}/ipv4udp", mt, payload)
                    n += 1
    print(f"pcap: {n} frames", file=sys.stderr)


NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 1, 4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3


def nl_request(sock, mtype, flags, payload, seq):
    sock.send(struct.pack("=IHHII", 16 + len(payload), mtype, flags, seq, 0) + payload)
    datagrams = []
    while True:
        d = sock.recv(65536)
        datagrams.append(d)
        off = 0
        done = False
        while off + 16 <= len(d):
            ln, t = struct.unpack("=IH", d[off:off + 6])
            if t in (NLMSG_DONE, NLMSG_ERROR):
                done = True
            off += (ln + 3) & ~3
        if done:
            return datagrams


def cmd_netlink(out):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, 0))
    rtgen = struct.pack("=B3x", socket.AF_UNSPEC)
    ifaddr = struct.pack("=BBBBI", socket.AF_UNSPEC, 0, 0, 0, 0)
    rtmsg = struct.pack("=BBBBBBBBI", socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)
    seq = 1
    for name, mtype, body in (("link", 18, struct.pack("=BxHiII", 0, 0, 0, 0, 0)),
                              ("addr", 22, ifaddr), ("route", 26, rtmsg), ("rule", 34, rtmsg)):
        for d in nl_request(s, mtype, NLM_F_REQUEST | NLM_F_DUMP, body, seq):
            save(f"{out}/rtnl", f"dump-{name}", d)
        seq += 1
    del rtgen

    # mptcp_pm: resolve the family, then GET_ADDR (dump) and GET_LIMITS.
    g = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)  # NETLINK_GENERIC
    g.bind((0, 0))
    name = b"mptcp_pm\0"
    attr = struct.pack("=HH", 4 + len(name), 2) + name  # CTRL_ATTR_FAMILY_NAME
    attr += b"\0" * ((4 - len(attr) % 4) % 4)
    reply = nl_request(g, 0x10, NLM_F_REQUEST | NLM_F_ACK, struct.pack("=BBH", 3, 1, 0) + attr, 1)[0]
    fam = None
    off = 16 + 4
    while off + 4 <= len(reply):
        ln, t = struct.unpack("=HH", reply[off:off + 4])
        if ln < 4:
            break
        if t == 1:  # CTRL_ATTR_FAMILY_ID
            fam = struct.unpack("=H", reply[off + 4:off + 6])[0]
        off += (ln + 3) & ~3
    if fam is None:
        print("netlink: no mptcp_pm family", file=sys.stderr)
        return
    for cmd, flags, nm in ((3, NLM_F_REQUEST | NLM_F_DUMP, "endpoints"), (6, NLM_F_REQUEST | NLM_F_ACK, "limits")):
        for d in nl_request(g, fam, flags, struct.pack("=BBH", cmd, 1, 0), cmd + 10):
            save(f"{out}/mptcp", nm, d)
    print("netlink: dumps saved", file=sys.stderr)


def cmd_events(out, secs):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    # RTMGRP_LINK | IPV4_IFADDR | IPV4_ROUTE | IPV6_IFADDR | IPV6_ROUTE | IPV4_RULE
    s.bind((0, 0x1 | 0x10 | 0x40 | 0x100 | 0x400 | 0x10000000))
    s.settimeout(0.2)
    end = time.time() + float(secs)
    n = 0
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        save(f"{out}/rtnl", "event", d)
        n += 1
    print(f"events: {n} datagrams", file=sys.stderr)


def cmd_dbus(out):
    import gi
    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib

    V = GLib.Variant

    def body(sig, value, big=False):
        m = Gio.DBusMessage.new_method_call("net.connman", "/", "net.connman.Manager", "X")
        m.set_body(V(sig, value))
        if big:
            m.set_byte_order(Gio.DBusMessageByteOrder.BIG_ENDIAN)
        blob = m.to_blob(Gio.DBusCapabilityFlags.NONE)
        fields = struct.unpack("<I" if blob[0:1] == b"l" else ">I", blob[12:16])[0]
        start = (16 + fields + 7) & ~7
        return blob[start:]

    sv = [
        ("AutoConnect", V("b", True)),
        ("MultipathRouting", V("b", False)),
        ("MultipathTcpLink", V("s", "backup")),
        ("Nameservers.Configuration", V("as", ["198.18.1.1", "fd18:1::1"])),
        ("Timeservers.Configuration", V("as", ["pool.ntp.org", "198.18.1.1"])),
        ("Domains.Configuration", V("as", ["lab.test", "up1.lab.test"])),
        ("IPv4.Configuration", V("a{sv}", {"Method": V("s", "manual"), "Address": V("s", "10.0.0.2"),
                                            "Netmask": V("s", "255.255.255.0"), "Gateway": V("s", "10.0.0.1")})),
        ("IPv4.Configuration", V("a{sv}", {"Method": V("s", "dhcp")})),
        ("IPv6.Configuration", V("a{sv}", {"Method": V("s", "auto"), "Privacy": V("s", "disabled")})),
        ("FlowSelectors", V("as", ["*-*-udp-7777-8888", "198.18.0.0/16-*-tcp-*-443", "*-fd19::1-udp-*-53"])),
        ("AllowedBearers", V("as", ["ethernet", "gadget"])),
        ("ConnectionType", V("s", "internet")),
        ("SourceIPRule", V("b", True)),
        ("MultipathRoutedServices", V("as", ["ethernet_02504d000001_cable"])),
        ("OfflineMode", V("b", False)),
    ]
    for i, (name, val) in enumerate(sv):
        for big in (False, True):
            # selector byte: bit 0 = big endian, bits 1-2 = mode 0 (sv)
            save(f"{out}/dbus_value", "sv", bytes([1 if big else 0]) + body("(sv)", (name, val), big))
        save(f"{out}/dbus_value", "v", bytes([2 << 1]) + body("(v)", (val,)))
    settings = {"AllowedBearers": V("as", ["ethernet"]), "ConnectionType": V("s", "any"),
                "FlowSelectors": V("as", ["*-*-udp-7777-8888"]), "AllowedInterface": V("s", "eth1"),
                "ContextIdentifier": V("s", "fuzz"), "SourceIPRule": V("b", False)}
    save(f"{out}/dbus_value", "create", bytes([1 << 1]) + body("(a{sv}o)", (settings, "/bench/notifier")))
    save(f"{out}/dbus_value", "dict", bytes([3 << 1]) + body("(a{sv})", ({"Method": V("s", "off")},)))
    print("dbus: bodies saved", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    c, out = sys.argv[1], sys.argv[2]
    {"pcap": lambda: cmd_pcap(out, sys.argv[3:]), "netlink": lambda: cmd_netlink(out),
     "events": lambda: cmd_events(out, sys.argv[3]), "dbus": lambda: cmd_dbus(out)}[c]()
