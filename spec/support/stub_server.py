#!/usr/bin/env python3
"""A stub S3 endpoint for the command line's network options
(spec/cli_spec.lua): `stub_server.py PORT MODE`, MODE 503 (every request
answers 503 SlowDown), hang (requests are read, never answered) or
noaccept (a listening socket whose backlog is full: a connect never
completes, the case --connect-timeout is for)."""
import http.server
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if sys.argv[2] == "hang":
            time.sleep(60)
            return
        body = b"<Error><Code>SlowDown</Code><Message>stub</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = answer


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


if sys.argv[2] == "noaccept":
    import socket
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1])))
    srv.listen(0)
    # Fill the accept queue: later SYNs are dropped, connects hang.
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", int(sys.argv[1])))
        fillers.append(f)
    time.sleep(120)
    sys.exit(0)

Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
