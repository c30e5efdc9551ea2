#!/usr/bin/python3
"""Drives Debian's connmanctl in interactive mode through a pseudo-terminal, as a user at
its prompt: sends lines, waits for the text each answer must contain, answers the agent's
passphrase prompt. Prints what connmanctl printed (ANSI codes stripped) and, per step,
`step N ok SECONDS` or `step N timeout`; exit 0 when every step's text came.

Usage: connmanctl_session.py TIMEOUT STEP...
  STEP is SEND=>EXPECT: send SEND (a line), then wait for EXPECT in the output since SEND.
  SEND may be empty (just wait). EXPECT may be empty (do not wait).
Example:
  connmanctl_session.py 60 'agent on=>Agent registered' \\
      'connect wifi_x_psk=>Passphrase?' 'correct horse=>Connected wifi_x_psk'
"""
import os
import pty
import re
import select
import sys
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][AB0-2]|\r")


def main():
    timeout = float(sys.argv[1])
    steps = [s.split("=>", 1) if "=>" in s else [s, ""] for s in sys.argv[2:]]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("connmanctl", ["connmanctl"])
    seen = b""
    code = 0

    def read_for(secs, want):
        nonlocal seen
        start = len(seen)
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if want and want.encode() in ANSI.sub(b"", seen[start:]):
                return True
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    return False
                if not chunk:
                    return False
                seen += chunk
        return not want

    read_for(2, "")  # the prompt
    t0 = time.monotonic()
    for i, (send, want) in enumerate(steps):
        t = time.monotonic()
        if send:
            os.write(fd, send.encode() + b"\r")
        if read_for(max(1.0, timeout - (t - t0)), want):
            print("step %d ok %.3f" % (i, time.monotonic() - t), flush=True)
        else:
            print("step %d timeout waiting for %r" % (i, want), flush=True)
            code = 1
            break
    os.write(fd, b"quit\r")
    read_for(1, "")
    try:
        os.kill(pid, 9)
    except OSError:
        pass
    sys.stdout.write(ANSI.sub(b"", seen).decode("utf-8", "replace"))
    return code


if __name__ == "__main__":
    sys.exit(main())
