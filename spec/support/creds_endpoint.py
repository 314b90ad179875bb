#!/usr/bin/python3
"""A credentials endpoint in the shape of the container-credentials one
(GET /creds -> {AccessKeyId, SecretAccessKey, Token, Expiration}) that
counts its calls, for spec/openresty_spec.lua: the credentials it hands
out are the real rgw ones from the environment (OBJSTORE_TEST_ACCESS_KEY,
OBJSTORE_TEST_SECRET_KEY), valid TTL seconds from each call.

Usage: creds_endpoint.py PORT TTL LIFETIME   (127.0.0.1 only; exits by
itself after LIFETIME seconds). GET /count -> the number of /creds calls.
"""
import json, os, sys, threading, time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, TTL, LIFETIME = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
calls = 0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        global calls
        if self.path == "/count":
            body = str(calls).encode()
        elif self.path == "/creds":
            with lock:
                calls += 1
            exp = datetime.fromtimestamp(time.time() + TTL, timezone.utc)
            body = json.dumps({
                "AccessKeyId": os.environ["OBJSTORE_TEST_ACCESS_KEY"],
                "SecretAccessKey": os.environ["OBJSTORE_TEST_SECRET_KEY"],
                "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
threading.Timer(LIFETIME, server.shutdown).start()
server.serve_forever()
