#!/usr/bin/python3
"""tests/lab/at_modem.py - a simulated GSM/UMTS modem: an AT-command server (stdlib only)
for the phonesim plugin that Debian's ofonod has built in. ofonod connects to it over TCP
(keyfile named by $OFONO_PHONESIM_CONFIG: a group with Address=127.0.0.1, Port=PORT) and
drives it like a modem: SIM, network registration, packet attach, PDP contexts. Written
from the 3GPP TS 27.007 command set and from watching what ofonod sends; commands it does
not know are answered ERROR (ofonod then drops that atom, which is harmless here).

Every line received and sent is logged to --log, one line each:
    <monotonic seconds> RX AT+CGATT=1
    <monotonic seconds> TX OK
    <monotonic seconds> URC +CGREG: 1,"00C3","0000A1B2",7
    <monotonic seconds> CTL reg roaming

Knobs (flags at start, or one-line commands on the --ctl unix socket at run time):
    imsi DIGITS            --imsi            SubscriberIdentity (AT+CIMI)
    operator NAME          --operator        network name (AT+COPS? alphanumeric)
    mccmnc DIGITS          --mccmnc          network MCC+MNC (AT+COPS? numeric)
    sim ready|pin|absent   --sim             SIM state; pin: AT+CPIN? says SIM PIN until
                                             AT+CPIN="<--pin>" (default 1234). At run
                                             time a change is a SIM removal/insertion
                                             (+USIMSTATE: 0 / 1 URCs, phonesim's own)
    reg home|roaming|denied|searching|none   --reg   +CREG stat 1/5/3/2/0 (a URC when the
                                             radio is on; leaving home/roaming detaches)
    attach ok|fail         --attach          fail: AT+CGATT=1 -> ERROR
    activate ok|error|cme  --activate        AT+CGACT=1,<cid> -> OK / ERROR /
                                             +CME ERROR: 148
    csq N                  --csq             signal (0-31, 99 unknown): AT+CSQ and a
                                             +CSQ: N,99 URC (ofonod's phonesim netreg
                                             listens to it; Strength = N*100/31)
    detach                                   network-initiated detach: +CGEV: NW DETACH,
                                             +CGREG: 0, every context inactive here
                                             (ofonod 1.31 then says Attached false but
                                             keeps the context Active: the phonesim
                                             context driver has no deactivation event)
    urc LINE                                 send LINE as an unsolicited result
    state                                    the modem's state as JSON
    ping                                     OK
Every reply on the control socket is one line: "OK[ text]" or "ERR text".

Usage:
    at_modem.py serve --port PORT --ctl SOCKET --log FILE [--imsi ..] [--operator ..] ...
    at_modem.py ctl SOCKET COMMAND [ARGS...]   (prints the reply; exit 1 unless OK)
"""
import argparse
import asyncio
import json
import os
import re
import socket
import sys
import time

REG_STAT = {"none": 0, "home": 1, "searching": 2, "denied": 3, "roaming": 5}
LAC, CI, ACT = "00C3", "0000A1B2", 7   # ACT 7 = E-UTRAN; ofonod reports Technology "lte"


class Modem:
    def __init__(self, args):
        self.imsi = args.imsi
        self.operator = args.operator
        self.mccmnc = args.mccmnc
        self.sim = args.sim
        self.pin = args.pin
        self.reg = args.reg
        self.attach_ok = args.attach == "ok"
        self.activate = args.activate
        self.csq = args.csq
        self.cfun = 0
        self.creg_mode = 0
        self.cgreg_mode = 0
        self.cgerep = 0
        self.cops_format = 0
        self.attached = False
        self.contexts = {}     # cid -> (pdp type, apn)
        self.active = set()
        self.clients = set()
        self.logf = open(args.log, "a", buffering=1)
        self.t0 = time.monotonic()

    # ------------------------------------------------------------ I/O
    def log(self, tag, text):
        self.logf.write("%.3f %s %s\n" % (time.monotonic() - self.t0, tag, text))

    def urc(self, line):
        self.log("URC", line)
        data = ("\r\n%s\r\n" % line).encode()
        for w in list(self.clients):
            try:
                w.write(data)
            except OSError:
                self.clients.discard(w)

    # ------------------------------------------------------------ derived state
    def creg_stat(self):
        return REG_STAT[self.reg] if self.cfun == 1 else 0

    def registered(self):
        return self.creg_stat() in (1, 5)

    def cgreg_stat(self):
        return self.creg_stat() if self.attached and self.registered() else 0

    @staticmethod
    def reg_fields(stat):
        if stat in (1, 5):
            return '%d,"%s","%s",%d' % (stat, LAC, CI, ACT)
        return "%d" % stat

    def send_creg(self):
        if self.creg_mode:
            self.urc("+CREG: " + self.reg_fields(self.creg_stat()))

    def send_cgreg(self):
        if self.cgreg_mode:
            self.urc("+CGREG: " + self.reg_fields(self.cgreg_stat()))

    def detach(self, network):
        was = self.attached
        self.attached = False
        self.active.clear()
        if was:
            if network:
                self.urc("+CGEV: NW DETACH")
            self.send_cgreg()

    def set_reg(self, value):
        self.reg = value
        self.send_creg()
        if self.attached:
            if self.registered():
                self.send_cgreg()
            else:
                self.detach(True)

    def sim_error(self):
        """+CME ERROR for SIM commands while the SIM is not usable, else None."""
        if self.sim == "absent":
            return "+CME ERROR: 10"
        if self.sim == "pin":
            return "+CME ERROR: 11"
        return None

    # ------------------------------------------------------------ AT commands
    def command(self, cmd):
        """One command without its AT prefix -> (lines, final result, urcs after it)."""
        c = cmd.upper()
        if re.fullmatch(r"&?[A-Z]\d*", c):   # basic commands: ATE0, ATV1, ATZ, AT&F, ATQ0
            return [], "OK" if c[0] in "EVZQ&" else "ERROR", []
        m = re.fullmatch(r"([+%*^$&]?[A-Z]+)(=\?|\?|=.*)?", c, re.S)
        if not m:
            return [], "ERROR", []
        name, rest = m.group(1), m.group(2) or ""
        arg = cmd[len(name) + 1:] if rest.startswith("=") and rest != "=?" else ""
        h = getattr(self, "at_" + re.sub(r"[^A-Z]", "", name).lower(), None)
        if h is None or not name.startswith("+"):
            return [], "ERROR", []
        return h(rest, arg)

    def at_cmee(self, rest, arg):
        return ["+CMEE: 1"] if rest == "?" else [], "OK", []

    def at_cscs(self, rest, arg):
        if rest == "=?":
            return ['+CSCS: ("GSM","IRA","UCS2")'], "OK", []
        if rest == "?":
            return ['+CSCS: "GSM"'], "OK", []
        return [], "OK", []

    def at_cbc(self, rest, arg): return ["+CBC: 0,80"], "OK", []
    def at_cgmi(self, rest, arg): return ["pathman lab"], "OK", []
    def at_cgmm(self, rest, arg): return ["at_modem.py"], "OK", []
    def at_cgmr(self, rest, arg): return ["1.0"], "OK", []
    def at_cgsn(self, rest, arg): return ["490154203237518"], "OK", []
    def at_gcap(self, rest, arg): return ["+GCAP: +CGSM"], "OK", []

    def at_simstate(self, rest, arg):
        return ["+SIMSTATE: %d" % (self.sim != "absent")], "OK", []

    def at_cpin(self, rest, arg):
        if self.sim == "absent":
            return [], "+CME ERROR: 10", []
        if rest == "?":
            return ["+CPIN: " + ("SIM PIN" if self.sim == "pin" else "READY")], "OK", []
        if rest.startswith("="):
            if self.sim != "pin":
                return [], "+CME ERROR: 3", []
            if arg.split(",")[0].strip().strip('"') != self.pin:
                return [], "+CME ERROR: 16", []
            self.sim = "ready"
            # ofonod 1.31 then waits for "SIM initialized", which its phonesim plugin
            # never reports; a SIM re-insertion (+USIMSTATE: 0, 1) makes it start over
            # and read AT+CPIN? READY, as a modem that restarts its SIM would.
            return [], "OK", [self.reinsert_sim]
        return [], "ERROR", []

    def reinsert_sim(self):
        self.urc("+USIMSTATE: 0")
        self.urc("+USIMSTATE: 1")

    def set_sim(self, value):
        was, self.sim = self.sim, value
        if value == "absent" and was != "absent":
            self.urc("+USIMSTATE: 0")
        elif value != "absent" and was != value:
            self.reinsert_sim()

    def at_crsm(self, rest, arg):
        err = self.sim_error()
        if err:
            return [], err, []
        return ["+CRSM: 106,130"], "OK", []   # 6A82: file not found (no EFs here)

    def at_cimi(self, rest, arg):
        err = self.sim_error()
        return ([], err, []) if err else ([self.imsi], "OK", [])

    def at_cfun(self, rest, arg):
        if rest == "=?":
            return ["+CFUN: (0,1,4),(0-1)"], "OK", []
        if rest == "?":
            return ["+CFUN: %d" % self.cfun], "OK", []
        try:
            fun = int(arg.split(",")[0])
        except ValueError:
            return [], "ERROR", []
        if fun not in (0, 1, 4):
            return [], "+CME ERROR: 4", []
        was = self.cfun
        self.cfun = fun
        after = []
        if was != fun:
            if fun != 1:
                self.attached = False
                self.active.clear()
            after = [self.send_creg, self.send_cgreg]
        return [], "OK", after

    def reg_cmd(self, prefix, rest, arg, mode_attr, stat):
        if rest == "=?":
            return ["%s (0-2)" % prefix], "OK", []
        if rest == "?":
            f = self.reg_fields(stat())
            return ["%s %d,%s" % (prefix, getattr(self, mode_attr), f)], "OK", []
        try:
            mode = int(arg or "0")
        except ValueError:
            return [], "ERROR", []
        if mode not in (0, 1, 2):
            return [], "+CME ERROR: 4", []
        setattr(self, mode_attr, mode)
        return [], "OK", []

    def at_creg(self, rest, arg):
        return self.reg_cmd("+CREG:", rest, arg, "creg_mode", self.creg_stat)

    def at_cgreg(self, rest, arg):
        return self.reg_cmd("+CGREG:", rest, arg, "cgreg_mode", self.cgreg_stat)

    def at_cops(self, rest, arg):
        if rest == "=?":
            return ['+COPS: (2,"%s","%s","%s",%d),,(0,1,3,4),(0,1,2)'
                    % (self.operator, self.operator, self.mccmnc, ACT)], "OK", []
        if rest == "?":
            if not self.registered():
                return ["+COPS: 0"], "OK", []
            oper = self.mccmnc if self.cops_format == 2 else self.operator
            return ['+COPS: 0,%d,"%s",%d' % (self.cops_format, oper, ACT)], "OK", []
        parts = arg.split(",")
        if parts[0] == "3" and len(parts) > 1 and parts[1] in ("0", "1", "2"):
            self.cops_format = int(parts[1])
            return [], "OK", []
        if parts[0] in ("0", "1", "4"):
            return [], "OK", [self.send_creg]
        if parts[0] == "2":
            return [], "OK", []
        return [], "+CME ERROR: 4", []

    def at_csq(self, rest, arg):
        if rest == "=?":
            return ["+CSQ: (0-31,99),(0-7,99)"], "OK", []
        return ["+CSQ: %d,99" % self.csq], "OK", []

    def at_cgdcont(self, rest, arg):
        if rest == "=?":
            return ['+CGDCONT: (1-2),"%s",,,(0-2),(0-4)' % t for t in ("IP", "IPV6", "IPV4V6")], "OK", []
        if rest == "?":
            return ['+CGDCONT: %d,"%s","%s","0.0.0.0",0,0' % (cid, t, apn)
                    for cid, (t, apn) in sorted(self.contexts.items())], "OK", []
        parts = [p.strip().strip('"') for p in arg.split(",")]
        try:
            cid = int(parts[0])
        except ValueError:
            return [], "ERROR", []
        if not 1 <= cid <= 2:
            return [], "+CME ERROR: 4", []
        if len(parts) == 1:
            self.contexts.pop(cid, None)
            self.active.discard(cid)
        else:
            self.contexts[cid] = (parts[1] or "IP", parts[2] if len(parts) > 2 else "")
        return [], "OK", []

    def at_cgauto(self, rest, arg):
        return ["+CGAUTO: 0"] if rest == "?" else [], "OK", []

    def at_cgerep(self, rest, arg):
        if rest == "=?":
            return ["+CGEREP: (0-2),(0-1)"], "OK", []
        if rest == "?":
            return ["+CGEREP: %d,0" % self.cgerep], "OK", []
        try:
            self.cgerep = int((arg or "0").split(",")[0])
        except ValueError:
            return [], "ERROR", []
        return [], "OK", []

    def at_cgatt(self, rest, arg):
        if rest == "=?":
            return ["+CGATT: (0,1)"], "OK", []
        if rest == "?":
            return ["+CGATT: %d" % self.attached], "OK", []
        if arg == "1":
            if self.attached:
                return [], "OK", []
            if not self.attach_ok or not self.registered():
                return [], "ERROR", []
            self.attached = True
            return [], "OK", [self.send_cgreg]
        if arg == "0":
            if not self.attached:
                return [], "OK", []
            return [], "OK", [lambda: self.detach(False)]
        return [], "ERROR", []

    def at_cgact(self, rest, arg):
        if rest == "=?":
            return ["+CGACT: (0,1)"], "OK", []
        if rest == "?":
            return ["+CGACT: %d,%d" % (cid, cid in self.active)
                    for cid in sorted(self.contexts)], "OK", []
        parts = [p.strip() for p in arg.split(",")]
        try:
            state = int(parts[0])
            cids = [int(p) for p in parts[1:]] or sorted(self.contexts)
        except ValueError:
            return [], "ERROR", []
        if state == 1:
            if not self.attached or any(c not in self.contexts for c in cids):
                return [], "+CME ERROR: 148", []
            if self.activate == "error":
                return [], "ERROR", []
            if self.activate == "cme":
                return [], "+CME ERROR: 148", []
            self.active.update(cids)
            return [], "OK", []
        if state == 0:
            self.active.difference_update(cids)
            return [], "OK", []
        return [], "ERROR", []

    def line(self, text):
        """A command line as received -> bytes to answer."""
        t = text.strip()
        if not t.upper().startswith("AT"):
            self.log("TX", "ERROR")
            return b"\r\nERROR\r\n", []
        out, final, after = [], "OK", []
        for cmd in split_commands(t[2:]):
            lines, final, urcs = self.command(cmd)
            out += lines
            after += urcs
            if final != "OK":
                after = []
                break
        reply = "".join("\r\n%s\r\n" % l for l in out + [final])
        for l in out + [final]:
            self.log("TX", l)
        return reply.encode(), after

    # ------------------------------------------------------------ control
    def control(self, words):
        cmd, args = words[0], words[1:]
        one = args[0] if args else ""
        if cmd == "ping":
            return "OK"
        if cmd == "state":
            return "OK " + json.dumps(self.state())
        if cmd == "imsi" and one.isdigit():
            self.imsi = one
        elif cmd == "operator" and args:
            self.operator = " ".join(args)
        elif cmd == "mccmnc" and one.isdigit():
            self.mccmnc = one
        elif cmd == "sim" and one in ("ready", "pin", "absent"):
            self.set_sim(one)
        elif cmd == "reg" and one in REG_STAT:
            self.set_reg(one)
        elif cmd == "attach" and one in ("ok", "fail"):
            self.attach_ok = one == "ok"
        elif cmd == "activate" and one in ("ok", "error", "cme"):
            self.activate = one
        elif cmd == "csq" and one.isdigit() and (int(one) <= 31 or one == "99"):
            self.csq = int(one)
            self.urc("+CSQ: %d,99" % self.csq)
        elif cmd == "detach":
            self.detach(True)
        elif cmd == "urc" and args:
            self.urc(" ".join(args))
        else:
            return "ERR unknown or bad command: %s" % " ".join(words)
        return "OK"

    def state(self):
        return {
            "imsi": self.imsi, "operator": self.operator, "mccmnc": self.mccmnc,
            "sim": self.sim, "reg": self.reg, "attach": "ok" if self.attach_ok else "fail",
            "activate": self.activate, "csq": self.csq, "cfun": self.cfun,
            "creg_mode": self.creg_mode, "cgreg_mode": self.cgreg_mode,
            "attached": self.attached, "clients": len(self.clients),
            "contexts": {str(c): {"type": t, "apn": a, "active": c in self.active}
                         for c, (t, a) in sorted(self.contexts.items())},
        }


def split_commands(s):
    """'+CREG=2;+CGREG=2' -> ['+CREG=2', '+CGREG=2'] (';' inside quotes kept); basic
    commands run together ('E0V1') are split too."""
    parts, cur, quoted = [], "", False
    for ch in s:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in (p.strip() for p in parts):
        if not p:
            continue
        while p and p[0] not in "+%*^$":
            m = re.match(r"(&?[A-Za-z])(\d*)", p)
            if not m:
                break
            out.append(m.group(1) + m.group(2))
            p = p[m.end():]
        if p:
            out.append(p)
    return out


async def serve(args):
    modem = Modem(args)

    async def at_client(reader, writer):
        modem.clients.add(writer)
        modem.log("CONNECT", str(writer.get_extra_info("peername")))
        buf = b""
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                buf += data
                while True:
                    m = re.search(rb"[\r\n]", buf)
                    if not m:
                        break
                    raw, buf = buf[:m.start()], buf[m.end():]
                    text = raw.decode("latin-1")
                    if not text.strip():
                        continue
                    modem.log("RX", text.strip())
                    reply, after = modem.line(text)
                    writer.write(reply)
                    for f in after:
                        f()
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            modem.clients.discard(writer)
            modem.log("DISCONNECT", "")
            writer.close()

    async def ctl_client(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                words = line.decode().split()
                if not words:
                    continue
                modem.log("CTL", " ".join(words))
                reply = modem.control(words)
                modem.log("CTL", "-> " + reply)
                writer.write((reply + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    at = await asyncio.start_server(at_client, args.address, args.port, reuse_address=True)
    if os.path.exists(args.ctl):
        os.unlink(args.ctl)
    ctl = await asyncio.start_unix_server(ctl_client, args.ctl)
    modem.log("START", json.dumps(modem.state()))
    async with at, ctl:
        await asyncio.gather(at.serve_forever(), ctl.serve_forever())


def ctl_main(argv):
    if len(argv) < 2:
        sys.exit("usage: at_modem.py ctl SOCKET COMMAND [ARGS...]")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(argv[0])
    s.sendall((" ".join(argv[1:]) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(4096)
        if not d:
            break
        buf += d
    reply = buf.decode().strip()
    print(reply)
    sys.exit(0 if reply.startswith("OK") else 1)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "ctl":
        ctl_main(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description="simulated AT modem for ofonod's phonesim plugin")
    p.add_argument("mode", choices=["serve"])
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=12345)
    p.add_argument("--ctl", required=True, help="control unix socket path")
    p.add_argument("--log", required=True)
    p.add_argument("--imsi", default="001010123456789")
    p.add_argument("--operator", default="CellSpike")
    p.add_argument("--mccmnc", default="00101")
    p.add_argument("--sim", choices=["ready", "pin", "absent"], default="ready")
    p.add_argument("--pin", default="1234")
    p.add_argument("--reg", choices=sorted(REG_STAT), default="home")
    p.add_argument("--attach", choices=["ok", "fail"], default="ok")
    p.add_argument("--activate", choices=["ok", "error", "cme"], default="ok")
    p.add_argument("--csq", type=int, default=24)
    args = p.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
