#!/usr/bin/python3
"""Small stdlib-only helpers for the lab; run inside a lab namespace.

  probe.py txcsum IFACE on|off   TX checksum offload on/off (what `ethtool -K IFACE tx off`
                                 does, through the SIOCETHTOOL ioctl); prints the new state
  probe.py dhcp IFACE [TIMEOUT]  send a DHCPDISCOVER on IFACE (must be up), print the OFFER
                                 as JSON (no lease is taken); exit 1 on timeout
"""
import ctypes
import fcntl
import json
import random
import socket
import struct
import sys
import time

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


def txcsum(iface, state):
    # veth leaves UDP checksums "partial"; DHCP clients reading from packet sockets then
    # see bad checksums. With TX checksum offload off the kernel fills them in.
    siocethtool, ethtool_gtxcsum, ethtool_stxcsum = 0x8946, 0x16, 0x17
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def call(cmd, data=0):
        ev = ctypes.create_string_buffer(struct.pack("II", cmd, data))
        ifr = struct.pack("16sP16x", iface.encode(), ctypes.addressof(ev))
        fcntl.ioctl(s.fileno(), siocethtool, ifr)
        return struct.unpack("II", ev.raw[:8])[1]

    call(ethtool_stxcsum, 1 if state == "on" else 0)
    print(json.dumps({"iface": iface, "tx_checksum": bool(call(ethtool_gtxcsum))}))
    return 0


def dhcp(iface, timeout="5"):
    with open(f"/sys/class/net/{iface}/address") as f:
        mac = bytes.fromhex(f.read().strip().replace(":", ""))
    xid = random.getrandbits(32)
    pkt = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                      bytes(4), bytes(4), bytes(4), bytes(4), mac + bytes(10),
                      bytes(64), bytes(128))
    pkt += b"\x63\x82\x53\x63" + bytes([53, 1, 1, 55, 5, 1, 3, 6, 15, 42, 255])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
    s.bind(("0.0.0.0", 68))
    s.settimeout(0.5)
    end = time.time() + float(timeout)
    while time.time() < end:
        s.sendto(pkt, ("255.255.255.255", 67))
        try:
            while True:
                data, _ = s.recvfrom(2048)
                if len(data) < 240 or data[0] != 2 or struct.unpack("!I", data[4:8])[0] != xid:
                    continue
                opts, i = {}, 240
                while i + 1 < len(data) and data[i] != 255:
                    if data[i] == 0:
                        i += 1
                        continue
                    code, ln = data[i], data[i + 1]
                    opts[code] = data[i + 2:i + 2 + ln]
                    i += 2 + ln
                ip4 = lambda b: ".".join(str(x) for x in b)
                print(json.dumps({
                    "yiaddr": ip4(data[16:20]),
                    "server": ip4(opts.get(54, bytes(4))),
                    "router": ip4(opts.get(3, bytes(4))[:4]),
                    "dns": ip4(opts.get(6, bytes(4))[:4]),
                    "domain": opts.get(15, b"").decode(errors="replace"),
                    "ntp": ip4(opts.get(42, bytes(4))[:4]),
                    "lease_s": struct.unpack("!I", opts[51])[0] if 51 in opts else None,
                }))
                return 0
        except socket.timeout:
            continue
    print(json.dumps({"error": "no DHCPOFFER", "iface": iface}))
    return 1


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    sys.exit({"txcsum": txcsum, "dhcp": dhcp}[cmd](*args))
