#!/usr/bin/python3
"""The lab's "internet server" HTTP answerer (stdlib only), run in netns pm-ID-inet.

  http-responder.py [--port 80] [--mode MODE] [--header 'Name: value']...

MODE (default online):
  online    every GET/HEAD: 204 for paths ending in generate_204, otherwise 200 with an
            empty body and the header X-ConnMan-Status: online (what ConnMan-style online
            checks look for), plus any --header given
  portal    200 with a small HTML body and no X-ConnMan-Status header (a captive portal)
  redirect  302 to the same path (a redirect loop)
  hang      accepts the connection, reads the request, never answers (closes after 120 s)
  huge      200 followed by 10 MB of header lines (a head that never ends), then a body
  garbage   64 KiB of random bytes, no HTTP at all
Listens on all IPv4 and IPv6 addresses. One line per request on stdout (the lab redirects
it to a log file): "CLIENT-ADDRESS MODE REQUEST-LINE STATUS" (STATUS "-" when none is sent).
"""
import http.server
import os
import socket
import sys
import time

MODES = ("online", "portal", "redirect", "hang", "huge", "garbage")


def main():
    port, mode, headers = 80, "online", [("X-ConnMan-Status", "online")]
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--port":
            port = int(args.pop(0))
        elif a == "--mode":
            mode = args.pop(0)
            if mode not in MODES:
                sys.exit(f"unknown mode {mode} (want one of {', '.join(MODES)})")
        elif a == "--header":
            name, _, value = args.pop(0).partition(":")
            headers.append((name.strip(), value.strip()))
        else:
            sys.exit(f"unknown argument {a}")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_request(self, code="-", size="-"):
            print(f"{self.client_address[0]} {mode} {self.requestline} {code}", flush=True)

        def raw(self, data):
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:
                pass

        def do_GET(self):
            if mode == "online":
                code = 204 if self.path.endswith("generate_204") else 200
                self.send_response(code)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif mode == "portal":
                body = b"<html><body>Log in first</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.raw(body)
            elif mode == "redirect":
                self.send_response(302)
                self.send_header("Location", self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif mode == "hang":
                self.log_request()
                time.sleep(120)
                self.close_connection = True
            elif mode == "huge":
                self.log_request()
                self.raw(b"HTTP/1.1 200 OK\r\n")
                line = b"X-Filler: " + b"x" * 1013 + b"\r\n"
                for _ in range(10 * 1024):
                    try:
                        self.wfile.write(line)
                    except OSError:
                        return
                self.raw(b"X-ConnMan-Status: online\r\n\r\n")
                self.close_connection = True
            elif mode == "garbage":
                self.log_request()
                self.raw(os.urandom(64 * 1024))
                self.close_connection = True

        do_HEAD = do_GET

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6
        daemon_threads = True

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    print(f"listening on :{port}, mode {mode}", flush=True)
    Server(("::", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
