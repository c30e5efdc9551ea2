#!/usr/bin/python3
"""A ConnMan client with an agent, as connmanctl's `agent on` + `connect`:
registers a net.connman.Agent, calls Service.Connect asynchronously (the
daemon asks the agent while Connect is pending), answers RequestInput, and
prints one line per event, then exits:

  request <fields>         RequestInput arrived (field names, sorted)
  report <error>           ReportError arrived
  cancel                   Cancel arrived (pathman withdrew its request)
  connected <seconds>      Connect replied success (seconds since the call)
  error <name> <message>   Connect replied an error

Usage: agent_connect.py SERVICE_ID MODE [ARG]
  MODE passphrase P    answer Passphrase=P
  MODE cancel          answer net.connman.Agent.Error.Canceled
  MODE wrongtype       answer Passphrase as a uint32
  MODE none            register no agent at all
  MODE hidden NAME [P] answer Name=NAME (a hidden network), and Passphrase=P if asked
  MODE retry P1 P2     answer Passphrase=P1, ReportError with net.connman.Agent.Error.Retry,
                       then Passphrase=P2 (connmanctl's "Retry (yes/no)? yes")
  MODE wait            leave RequestInput unanswered (a user at the prompt) until Cancel,
                       then answer it net.connman.Agent.Error.Canceled; exit only once
                       Cancel has arrived
Exit status 0 when Connect succeeded, 1 when it failed, 2 on a client error.
"""
import sys
import time

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.SystemBus()
AGENT_PATH = "/net/pathman/test/agent"


class Waiting(Exception):
    """RequestInput stays unanswered (mode wait)."""


class Agent(dbus.service.Object):
    def __init__(self, mode, arg, arg2=""):
        super().__init__(bus, AGENT_PATH)
        self.mode, self.arg, self.arg2 = mode, arg, arg2
        self.canceled, self.on_cancel = False, None

    @dbus.service.method("net.connman.Agent", in_signature="oa{sv}", out_signature="a{sv}",
                         async_callbacks=("reply", "error"))
    def RequestInput(self, service, fields, reply, error):
        try:
            reply(self.answer(fields))
        except dbus.exceptions.DBusException as e:
            error(e)
        except Waiting:
            self.pending = error

    def answer(self, fields):
        print("request", ",".join(sorted(str(k) for k in fields.keys())), flush=True)
        if self.mode == "wait":
            raise Waiting()
        if self.mode == "cancel":
            raise dbus.exceptions.DBusException("user canceled",
                                                name="net.connman.Agent.Error.Canceled")
        if self.mode == "wrongtype":
            return {"Passphrase": dbus.UInt32(7)}
        if self.mode == "retry":
            answer, self.arg = self.arg, self.arg2
            return {"Passphrase": dbus.String(answer)}
        if self.mode == "hidden":
            out = {"Name": dbus.String(self.arg)}
            if "Passphrase" in fields:
                out["Passphrase"] = dbus.String(self.arg2)
            return out
        return {"Passphrase": dbus.String(self.arg)}

    @dbus.service.method("net.connman.Agent", in_signature="os", out_signature="")
    def ReportError(self, service, error):
        print("report", error, flush=True)
        if self.mode == "retry" and not getattr(self, "retried", False):
            self.retried = True
            raise dbus.exceptions.DBusException("retry", name="net.connman.Agent.Error.Retry")

    @dbus.service.method("net.connman.Agent", in_signature="", out_signature="")
    def Release(self):
        pass

    @dbus.service.method("net.connman.Agent", in_signature="", out_signature="")
    def Cancel(self):
        print("cancel", flush=True)
        self.canceled = True
        if self.on_cancel:
            self.on_cancel()
        pending, self.pending = getattr(self, "pending", None), None
        if pending:
            pending(dbus.exceptions.DBusException("canceled by pathman",
                                                  name="net.connman.Agent.Error.Canceled"))


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    service, mode = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else ""
    arg2 = sys.argv[4] if len(sys.argv) > 4 else ""
    manager = dbus.Interface(bus.get_object("net.connman", "/"), "net.connman.Manager")
    agent = None
    if mode != "none":
        agent = Agent(mode, arg, arg2)
        manager.RegisterAgent(dbus.ObjectPath(AGENT_PATH))
    svc = dbus.Interface(bus.get_object("net.connman", "/net/connman/service/" + service),
                         "net.connman.Service")
    loop = GLib.MainLoop()
    result = {"code": 2}
    started = time.monotonic()

    def ok():
        print("connected %.3f" % (time.monotonic() - started), flush=True)
        result["code"] = 0
        loop.quit()

    def err(e):
        print("error", e.get_dbus_name(), e.get_dbus_message(), flush=True)
        result["code"] = 1
        if mode == "wait" and not agent.canceled:
            agent.on_cancel = loop.quit  # the Cancel may come after the reply
        else:
            loop.quit()

    svc.Connect(reply_handler=ok, error_handler=err, timeout=150)
    loop.run()
    if mode != "none":
        try:
            manager.UnregisterAgent(dbus.ObjectPath(AGENT_PATH))
        except dbus.exceptions.DBusException:
            pass
    return result["code"]


if __name__ == "__main__":
    sys.exit(main())
