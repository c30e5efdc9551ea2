#!/usr/bin/python3
"""The lab's "internet server" HTTP answerer (stdlib only), run in netns pm-ID-inet.

  http-responder.py [--port 80] [--header 'Name: value']...

Answers every GET/HEAD: 204 for paths ending in generate_204, otherwise 200 with an empty
body and the header X-ConnMan-Status: online (what ConnMan-style online checks look for),
plus any --header given. Listens on all IPv4 and IPv6 addresses. One line per request on
stdout (the lab redirects it to a log file).
"""
import http.server
import socket
import sys


def main():
    port, headers = 80, [("X-ConnMan-Status", "online")]
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--port":
            port = int(args.pop(0))
        elif a == "--header":
            name, _, value = args.pop(0).partition(":")
            headers.append((name.strip(), value.strip()))
        else:
            sys.exit(f"unknown argument {a}")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            code = 204 if self.path.endswith("generate_204") else 200
            self.send_response(code)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, fmt, *a):
            print(f"{self.client_address[0]} {fmt % a}", flush=True)

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6
        daemon_threads = True

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    Server(("::", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
