#!/usr/bin/env python3
"""A fault injector for spec/bad_input_spec.lua: a small real HTTP server
that answers every request with one kind of hostile answer, chosen by the
first path segment (the bucket, path-style addressing). No S3 behind it:
what it answers is exactly what a broken or malicious server could.

Usage: hostile_server.py PORT [LIFETIME_SECONDS]
Listens on 127.0.0.1:PORT only and exits by itself after LIFETIME seconds
(default 300). Modes (the bucket name):
  malformed-xml   200, XML cut off in the middle of an element
  not-xml         200, application/xml that is not XML at all
  error-200       200 whose body is an S3 <Error> document
  huge-header     200 with a 2 MiB header
  many-headers    200 with 120,000 small headers (over 1 MiB in all)
  long-body       Content-Length 10, 30 bytes sent, the connection kept
  short-body      Content-Length 1000, 50 bytes sent, then closed
  bad-length      Content-Length: -5
  huge-length     Content-Length: 99999999999999999999999, closed at once
  garbage         bytes that are not HTTP, then closed
  bad-status      status line "HTTP/1.1 20x OK"
  nul-header      a header value with a NUL byte
  empty           the connection closed without a byte
  stall           nothing at all: the request is read, the connection held
                  (30 s, then closed)
  trickle         200 with Content-Length 1000000, then 1 byte per second
  slow-down       503 SlowDown with Retry-After: 5
"""
import socket
import sys
import threading
import time

XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'
BODY = {
    "malformed-xml": XML_HEAD + b'<ListBucketResult><Name>x</Name><Contents><Key>a</Key><Size>1',
    "not-xml": b"\x00\x01\x02 this is not <<< xml &&& \xff\xfe",
    "error-200": XML_HEAD + b"<Error><Code>InternalError</Code><Message>We encountered an internal error."
    b" Please try again.</Message><RequestId>hostile-1</RequestId></Error>",
}


def read_request(conn):
    """Reads one request head and its body (Content-Length only); None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, target = (lines[0].split(b" ") + [b"", b""])[:2]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(rest) < length:
        chunk = conn.recv(min(1 << 20, length - len(rest)))
        if not chunk:
            return None
        rest += chunk
    mode = target.split(b"?")[0].lstrip(b"/").split(b"/")[0].decode("latin-1")
    return method.decode("latin-1"), mode


def answer(conn, method, mode):
    """Sends the mode's answer; returns whether the connection stays open."""
    common = b"Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()).encode() + b"\r\n"
    common += b"x-amz-request-id: hostile-1\r\n"
    if mode in BODY:
        body = BODY[mode]
        head = b"HTTP/1.1 200 OK\r\n" + common + b"Content-Type: application/xml\r\n"
        head += b'ETag: "0123456789abcdef0123456789abcdef"\r\n'
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        conn.sendall(head + (b"" if method == "HEAD" else body))
        return True
    if mode == "huge-header":
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + b"X-Big: " + b"a" * (2 << 20) + b"\r\nContent-Length: 0\r\n\r\n")
        return False
    if mode == "many-headers":
        hs = b"".join(b"X-H%d: v\r\n" % i for i in range(120000))
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + hs + b"Content-Length: 0\r\n\r\n")
        return False
    if mode == "long-body":
        body = b"0123456789" + b"EXTRA BYTES AFTER THE BODY!!"[:20]
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + b"Content-Length: 10\r\n\r\n" + (b"" if method == "HEAD" else body))
        return True
    if mode == "short-body":
        head = b"HTTP/1.1 200 OK\r\n" + common + b'ETag: "0123456789abcdef0123456789abcdef"\r\n'
        conn.sendall(head + b"Content-Length: 1000\r\n\r\n" + (b"" if method == "HEAD" else b"x" * 50))
        return method == "HEAD"
    if mode == "bad-length":
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + b"Content-Length: -5\r\n\r\nhello")
        return False
    if mode == "huge-length":
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + b"Content-Length: 99999999999999999999999\r\n\r\nabc")
        return False
    if mode == "garbage":
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\x00\xff\xfe garbage \r\n\r\n")
        return False
    if mode == "bad-status":
        conn.sendall(b"HTTP/1.1 20x OK\r\n" + common + b"Content-Length: 0\r\n\r\n")
        return False
    if mode == "nul-header":
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + b"X-Nul: a\x00b\r\nContent-Length: 0\r\n\r\n")
        return False
    if mode == "stall":
        while True:  # until the client goes (recv sees EOF) or the server's lifetime ends
            if not conn.recv(65536):
                return False
    if mode == "trickle":
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + b"Content-Length: 1000000\r\n\r\n")
        if method == "HEAD":
            return False
        while True:
            time.sleep(1)
            conn.sendall(b"x")
    if mode == "slow-down":
        body = XML_HEAD + b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        conn.sendall(b"HTTP/1.1 503 Slow Down\r\n" + common + b"Retry-After: 5\r\nContent-Type: application/xml\r\n"
                     + b"Content-Length: %d\r\n\r\n" % len(body) + (b"" if method == "HEAD" else body))
        return True
    return False  # "empty" and anything unknown: closed without a byte


def serve(conn):
    try:
        conn.settimeout(30)
        while True:
            req = read_request(conn)
            if req is None or not answer(conn, *req):
                break
    except OSError:
        pass
    finally:
        conn.close()


def main():
    port = int(sys.argv[1])
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    srv.settimeout(0.5)
    deadline = time.monotonic() + lifetime
    print("listening", flush=True)
    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
    srv.close()


if __name__ == "__main__":
    main()
