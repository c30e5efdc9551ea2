#!/usr/bin/python3
"""tests/lab/hostile_ntp.py - an NTP responder (stdlib only) that sends what chronyd cannot be
made to send: kiss-o'-death DENY/RSTR/RATE, leap indicator 3, a wrong originate timestamp, a
zero transmit timestamp, a huge root distance, poll exponent 0, stratum 16, a wrong mode,
nothing at all, or a valid time 100 s ahead (`ahead100`).

In mode `good` it answers like the lab's chronyd 4.3 (`local stratum 10`, `-x`): LI 0, the
request's version and poll echoed, mode 4, stratum 10, reference id 127.127.1.1, root delay and
dispersion 0, originate = the request's transmit timestamp, receive and transmit timestamps
from the clock. Every other mode changes exactly the fields listed in FIELDS below and nothing
else (`selftest` checks that), so a rejected reply is rejected for that field alone.

Every datagram received and every reply sent is logged, one line each, to --log:
    <monotonic seconds> recv 198.18.1.50:41234 vn=4 mode=3 poll=6 xmt=0x1f99f86f788055a4
    <monotonic seconds> sent kod-deny to 198.18.1.50:41234

Usage:
    hostile_ntp.py serve --mode MODE [--port 123] [--bind ::] [--log FILE]
        (in an upstream namespace; `lab.sh ntp ID K hostile MODE` starts it)
    hostile_ntp.py query HOST [--port 123] [--version 4] [--poll 6] [--wall] [--count N]
        one request per line of JSON out: request, reply, local send/receive times (this is
        how the test vectors in src/time/sntp/tests.rs were captured)
    hostile_ntp.py selftest
        checks that each mode's reply differs from the good one in its fields only
"""
import argparse
import json
import os
import socket
import struct
import sys
import time

NTP_UNIX_OFFSET = 2208988800
HEADER = struct.Struct("!BBbbII4sQQQQ")
FIELD_NAMES = ("leap", "version", "mode", "stratum", "poll", "precision", "root_delay",
               "root_dispersion", "reference_id", "reference", "originate", "receive",
               "transmit")

# The fields each mode changes relative to `good`.
FIELDS = {
    "good": (),
    "silent": (),
    "kod-deny": ("stratum", "reference_id"),
    "kod-rstr": ("stratum", "reference_id"),
    "kod-rate": ("stratum", "reference_id"),
    "li3": ("leap",),
    "bad-origin": ("originate",),
    "zero-transmit": ("transmit",),
    "huge-distance": ("root_dispersion",),
    "poll0": ("poll",),
    "stratum16": ("stratum",),
    "wrong-mode": ("mode",),
    # A valid server whose clock is 100 s ahead of ours: what a measurement must report.
    "ahead100": ("reference", "receive", "transmit"),
}
MODES = tuple(FIELDS)


def to_ntp(ns):
    """Unix nanoseconds -> 64-bit NTP timestamp (era dropped, as on the wire)."""
    secs, frac_ns = divmod(ns, 1_000_000_000)
    frac = -(-(frac_ns << 32) // 1_000_000_000)  # rounded up, as pathman does
    return (((secs + NTP_UNIX_OFFSET) & 0xffffffff) << 32) | min(frac, 0xffffffff)


def decode(data):
    """The 48-byte header as a dict of named fields."""
    (b0, stratum, poll, precision, rdelay, rdisp, refid, ref, org, rec,
     xmt) = HEADER.unpack_from(data)
    return dict(leap=b0 >> 6, version=(b0 >> 3) & 7, mode=b0 & 7, stratum=stratum, poll=poll,
                precision=precision, root_delay=rdelay, root_dispersion=rdisp,
                reference_id=refid, reference=ref, originate=org, receive=rec, transmit=xmt)


def encode(f):
    b0 = (f["leap"] << 6) | (f["version"] << 3) | f["mode"]
    return HEADER.pack(b0, f["stratum"], f["poll"], f["precision"], f["root_delay"],
                       f["root_dispersion"], f["reference_id"], f["reference"],
                       f["originate"], f["receive"], f["transmit"])


def good_reply(request, received_ns, sent_ns, reference_ns):
    """What chronyd 4.3 with `local stratum 10` answers to `request` (a decoded header)."""
    version = request["version"] if 1 <= request["version"] <= 4 else 4
    return dict(leap=0, version=version, mode=4, stratum=10, poll=request["poll"],
                precision=-20, root_delay=0, root_dispersion=0,
                reference_id=bytes([127, 127, 1, 1]), reference=to_ntp(reference_ns),
                originate=request["transmit"], receive=to_ntp(received_ns),
                transmit=to_ntp(sent_ns))


def hostile(mode, f):
    """`f` (a good reply) changed as `mode` says; None for no reply at all."""
    f = dict(f)
    if mode == "silent":
        return None
    if mode.startswith("kod-"):
        f["stratum"] = 0
        f["reference_id"] = mode[4:].upper().encode()
    elif mode == "li3":
        f["leap"] = 3
    elif mode == "bad-origin":
        f["originate"] ^= 1  # off by one fraction unit: only an exact comparison sees it
    elif mode == "zero-transmit":
        f["transmit"] = 0
    elif mode == "huge-distance":
        f["root_dispersion"] = 16 << 16  # 16 s
    elif mode == "poll0":
        f["poll"] = 0
    elif mode == "stratum16":
        f["stratum"] = 16
    elif mode == "wrong-mode":
        f["mode"] = 5  # broadcast
    elif mode == "ahead100":
        for k in ("reference", "receive", "transmit"):
            f[k] += 100 << 32
    return f


def serve(a):
    log = open(a.log, "a", buffering=1) if a.log else sys.stderr

    def note(line):
        log.write("%.3f %s\n" % (time.monotonic(), line))

    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((a.bind if a.bind else "::", a.port))
    except OSError:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((a.bind if a.bind and ":" not in a.bind else "0.0.0.0", a.port))
    started = time.time_ns()
    note("listening on port %d, mode %s" % (a.port, a.mode))
    while True:
        data, src = sock.recvfrom(2048)
        received = time.time_ns()
        peer = "%s:%d" % (src[0].removeprefix("::ffff:"), src[1])
        if len(data) < HEADER.size:
            note("recv %s short (%d bytes), ignored" % (peer, len(data)))
            continue
        req = decode(data)
        note("recv %s vn=%d mode=%d poll=%d xmt=0x%016x"
             % (peer, req["version"], req["mode"], req["poll"], req["transmit"]))
        if req["mode"] != 3:
            continue
        reply = hostile(a.mode, good_reply(req, received, time.time_ns(), started))
        if reply is None:
            note("dropped (%s)" % a.mode)
            continue
        sock.sendto(encode(reply), src)
        note("sent %s to %s" % (a.mode, peer))


def query(a):
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    for i in range(a.count):
        if i:
            time.sleep(a.interval)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.settimeout(3)
        t1 = time.time_ns()
        xmt = to_ntp(t1) if a.wall else int.from_bytes(os.urandom(8), "big") or 1
        req = dict(leap=3, version=a.version, mode=3, stratum=0, poll=a.poll, precision=0,
                   root_delay=0, root_dispersion=0, reference_id=b"\0\0\0\0", reference=0,
                   originate=0, receive=0, transmit=xmt)
        raw = encode(req)
        sock.sendto(raw, (a.host, a.port))
        try:
            data, src = sock.recvfrom(2048)
        except socket.timeout:
            print(json.dumps(dict(req=raw.hex(), resp=None)))
            continue
        t4 = time.time_ns()
        print(json.dumps(dict(src=list(src[:2]), t1_ns=t1, t4_ns=t4, req=raw.hex(),
                              resp=data.hex())))
        sock.close()


def selftest(_a):
    req = dict(leap=3, version=4, mode=3, stratum=0, poll=6, precision=0, root_delay=0,
               root_dispersion=0, reference_id=b"\0\0\0\0", reference=0, originate=0,
               receive=0, transmit=0x1f99f86f788055a4)
    now = time.time_ns()
    good = good_reply(req, now, now + 20_000, now - 10**9)
    assert decode(encode(good)) == good, "encode/decode round trip"
    assert good["originate"] == req["transmit"] and good["mode"] == 4
    failures = 0
    for mode in MODES:
        reply = hostile(mode, good)
        if reply is None:
            changed = ()
        else:
            back = decode(encode(reply))
            changed = tuple(k for k in FIELD_NAMES if back[k] != good[k])
        ok = changed == FIELDS[mode]
        failures += not ok
        print("%-14s changes %-30s %s" % (mode, ",".join(changed) or "-", "ok" if ok else
                                          "WRONG, want " + ",".join(FIELDS[mode])))
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--mode", choices=MODES, default="good")
    s.add_argument("--port", type=int, default=123)
    s.add_argument("--bind", default="")
    s.add_argument("--log", default="")
    q = sub.add_parser("query")
    q.add_argument("host")
    q.add_argument("--port", type=int, default=123)
    q.add_argument("--version", type=int, default=4)
    q.add_argument("--poll", type=int, default=6)
    q.add_argument("--wall", action="store_true", help="transmit = our clock, not a cookie")
    q.add_argument("--count", type=int, default=1)
    q.add_argument("--interval", type=float, default=2.5)
    sub.add_parser("selftest")
    a = p.parse_args()
    return {"serve": serve, "query": query, "selftest": selftest}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
