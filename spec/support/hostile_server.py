#!/usr/bin/env python3
"""A fault injector for spec/bad_input_spec.lua: a small real HTTP server
that answers every request with one kind of hostile answer, chosen by the
first path segment (the bucket, path-style addressing). No S3 behind it:
what it answers is exactly what a broken or malicious server could.

Usage: hostile_server.py PORT [LIFETIME_SECONDS [SECRET]]
Listens on 127.0.0.1:PORT only and exits by itself after LIFETIME seconds
(default 300). SECRET is what the server knows of the account's secret
key (a real S3 does): echo-secrets sends it back in its JSON excerpt. Modes (the bucket name):
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
  endless-chunked     200 application/xml, chunked, a ListBucketResult that never ends
  endless-error       500 application/xml, chunked, an <Error> body that never ends
  endless-header-line 200 and a header line that never ends (no LF, ever)
  endless-chunk-size  200 chunked, a chunk-size line that never ends
  many-attributes     200, a ListBucketResult with 80,000 attributes (0.9 MB)
  many-elements       200, a ListBucketResult with 2,000,000 empty elements (8 MB)
  bad-utf8-listing    200, a ListObjectsV2 page (EncodingType url) whose keys decode
                      to invalid UTF-8 (a%FFb, an overlong %C0%AF, a NUL) next to "good"
  date-1969           RequestTimeTooSkewed (403) with Date: ... 1969
  date-9999           RequestTimeTooSkewed (403) with Date: ... 9999
  date-1969-ok        200 (empty listing) with Date: ... 1969
  date-9999-ok        200 (empty listing) with Date: ... 9999
  echo-secrets        400 whose <Error> echoes every request header (Authorization,
                      X-Amz-Security-Token, SSE-C key) in the Message, the
                      token as token=..., url-encoded and base64, and a JSON body
                      excerpt with them
  error-fields        403 <Error> with <Retryable>false</Retryable>, <Status>,
                      <Op>, <Attempts>, <Endpoint> and <Retry_after> fields
  log-injection       403 <Error> whose Message holds CR LF, a forged log line and ESC
  random-codes        400 <Error> with a code never seen before on every answer
  stall           nothing at all: the request is read, the connection held
                  (30 s, then closed)
  trickle         200 with Content-Length 1000000, then 1 byte per second
  trickle-head    200, then a header line 1 byte per second (the head never ends)
  trickle-chunked 200 chunked, then one 1-byte chunk per second
  trickle-chunk-size 200 chunked, one chunk, then a size line of zeros
                  1 byte per second (the line never ends)
  slow-down       503 SlowDown with Retry-After: 5
  Objects for download_file (HEAD: 200 with a fixed Content-Length and
  ETag; GET: the bytes, Range honoured unless the mode says otherwise):
  range-shifted   an 11 MiB object (ETag its quoted MD5); a ranged GET for
                  bytes=a-b is answered 206 with the bytes and Content-Range
                  of a-1..b-1 (a+1..b+1 for a = 0): as long as asked, shifted
  range-whole     the same object; a ranged GET is answered 200 with the
                  whole object (the Range ignored)
  etag-upper      a 1000-byte object whose ETag is its MD5 in uppercase hex,
                  unquoted (OSS-compatible servers send such ETags)
  etag-upper-bad  the same, with the uppercase hex of another MD5
The endless modes send until the client goes away (or LIFETIME ends).
A PORT of 0 listens on a free port; the first line printed is
"listening PORT".
"""
import base64
import hashlib
import json
import random
import urllib.parse
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
    """Reads one request head and its body (Content-Length only); None at EOF.
    Returns (method, mode, headers) with headers a list of (name, value)."""
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
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
    return method.decode("latin-1"), mode, headers


ENDLESS_RATE = 64 << 20  # bytes/s: fast enough to pass any cap in a second, slow enough for a shared box


def endless(conn, head, piece):
    """Sends head, then piece forever (until the peer goes away, at most
    120 s), at ENDLESS_RATE at most."""
    conn.sendall(head)
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < 120:
        conn.sendall(piece)
        sent += len(piece)
        ahead = sent / ENDLESS_RATE - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    return False


def xml_answer(conn, method, status, body, date=None, extra=b""):
    date = date or time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    head = b"HTTP/1.1 " + status + b"\r\nDate: " + date.encode() + b"\r\nx-amz-request-id: hostile-1\r\n"
    head += b"Content-Type: application/xml\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body)
    conn.sendall(head + (b"" if method == "HEAD" else body))
    return True


def error_doc(code, message, more=b""):
    return (XML_HEAD + b"<Error><Code>" + code + b"</Code><Message>" + message + b"</Message>" + more
            + b"<RequestId>hostile-1</RequestId></Error>")


def xml_text(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode("utf-8", "replace")


EMPTY_LIST = (XML_HEAD + b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>x</Name>'
              b"<Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
              b"<IsTruncated>false</IsTruncated></ListBucketResult>")


OBJECT_BIG = (bytes(range(256)) * 4096 * 11)[: 11 * 1024 * 1024 + 12345]
OBJECT_SMALL = bytes((i * 7 + 3) % 256 for i in range(1000))


def object_answer(conn, method, mode, headers):
    """The download_file modes (see the module's doc); None for other modes."""
    if mode in ("range-shifted", "range-whole"):
        data = OBJECT_BIG
        etag = b'"' + hashlib.md5(data).hexdigest().encode() + b'"'
    elif mode in ("etag-upper", "etag-upper-bad"):
        data = OBJECT_SMALL
        digest = hashlib.md5(data if mode == "etag-upper" else data + b"x").hexdigest()
        etag = digest.upper().encode()
    else:
        return None
    common = b"Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()).encode() + b"\r\n"
    common += b"x-amz-request-id: hostile-1\r\nETag: " + etag + b"\r\nAccept-Ranges: bytes\r\n"
    common += b"Last-Modified: Mon, 07 Dec 2026 04:00:00 GMT\r\nContent-Type: application/octet-stream\r\n"
    rng = None
    for name, value in headers:
        if name.lower() == "range":
            rng = value
    size = len(data)
    if method == "HEAD" or rng is None or mode == "range-whole":
        head = b"HTTP/1.1 200 OK\r\n" + common + b"Content-Length: %d\r\n\r\n" % size
        conn.sendall(head + (b"" if method == "HEAD" else data))
        return True
    first, _, last = rng.partition("=")[2].partition("-")
    first, last = int(first), min(int(last), size - 1)
    shift = -1 if first > 0 else 1
    a, b = first + shift, last + shift
    if b >= size:
        a, b = a - 1, size - 1
    body = data[a: b + 1]
    head = b"HTTP/1.1 206 Partial Content\r\n" + common + b"Content-Range: bytes %d-%d/%d\r\n" % (a, b, size)
    conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return True


def answer_more(conn, method, mode, headers):
    """The modes added for issue 18; None when mode is not one of them."""
    served = object_answer(conn, method, mode, headers)
    if served is not None:
        return served
    chunked = b"HTTP/1.1 %s\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
    if mode == "endless-chunked":
        entry = b"<Contents><Key>k</Key><Size>1</Size></Contents>" * 300
        first = XML_HEAD + b"<ListBucketResult><Name>x</Name>"
        return endless(conn, chunked % b"200 OK" + b"%x\r\n" % len(first) + first + b"\r\n",
                       b"%x\r\n" % len(entry) + entry + b"\r\n")
    if mode == "endless-error":
        entry = b"<Message>again</Message>" * 600
        first = XML_HEAD + b"<Error><Code>InternalError</Code>"
        return endless(conn, chunked % b"500 Internal Server Error" + b"%x\r\n" % len(first) + first + b"\r\n",
                       b"%x\r\n" % len(entry) + entry + b"\r\n")
    if mode == "endless-header-line":
        return endless(conn, b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 65536)
    if mode == "endless-chunk-size":
        return endless(conn, chunked % b"200 OK" + b"1", b"0" * 65536)
    if mode == "many-attributes":
        attrs = b" ".join(b'a%d=""' % i for i in range(80000))
        return xml_answer(conn, method, b"200 OK", XML_HEAD + b"<ListBucketResult " + attrs
                          + b"><Name>x</Name></ListBucketResult>")
    if mode == "bad-utf8-listing":
        contents = b"".join(b"<Contents><Key>%s</Key><Size>1</Size><ETag>&quot;e&quot;</ETag>"
                            b"<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>" % k
                            for k in (b"good", b"a%FFb", b"%C0%AF", b"nul%00x"))
        return xml_answer(conn, method, b"200 OK", XML_HEAD + b"<ListBucketResult><Name>bad-utf8-listing</Name>"
                          b"<EncodingType>url</EncodingType><KeyCount>4</KeyCount><MaxKeys>1000</MaxKeys>"
                          b"<IsTruncated>false</IsTruncated>" + contents + b"</ListBucketResult>")
    if mode == "many-elements":
        return xml_answer(conn, method, b"200 OK", XML_HEAD + b"<ListBucketResult><Name>x</Name>"
                          + b"<a/>" * 2000000 + b"</ListBucketResult>")
    if mode.startswith("date-"):
        year = "1969" if "1969" in mode else "9999"
        date = "Wed, 31 Dec %s 23:59:59 GMT" % year if year == "1969" else "Fri, 31 Dec 9999 23:59:59 GMT"
        if mode.endswith("-ok"):
            return xml_answer(conn, method, b"200 OK", EMPTY_LIST, date)
        return xml_answer(conn, method, b"403 Forbidden", error_doc(
            b"RequestTimeTooSkewed", b"The difference between the request time and the current time is too large."),
            date)
    if mode == "echo-secrets":
        echoed = "; ".join("%s: %s" % (n, v) for n, v in headers)
        values = {n.lower(): v for n, v in headers}
        token = values.get("x-amz-security-token", values.get("x-oss-security-token", ""))
        auth = values.get("authorization", "")
        key = values.get("x-amz-server-side-encryption-customer-key", "")
        raw_key = base64.b64decode(key) if key else b""
        forms = "token=%s&quoted=%s&b64=%s&key=%s&rawkey=%s" % (
            token, urllib.parse.quote(token, safe=""), base64.b64encode(token.encode()).decode(), key,
            raw_key.hex())
        as_json = json.dumps({"headers": values, "token": token, "authorization": auth,
                              "secret": SECRET, "secret_b64": base64.b64encode(SECRET.encode()).decode()})
        body = error_doc(b"InvalidArgument", xml_text("you sent " + echoed + " | " + forms),
                         b"<Body>" + xml_text(as_json) + b"</Body><Echo>" + xml_text(echoed) + b"</Echo>")
        return xml_answer(conn, method, b"400 Bad Request", body,
                          extra=b"X-Echo-Token: " + token.encode("latin-1", "replace") + b"\r\n")
    if mode == "error-fields":
        body = error_doc(b"AccessDenied", b"Access Denied",
                         b"<Retryable>false</Retryable><Status>200</Status><Op>Forged</Op><Attempts>99</Attempts>"
                         b"<Endpoint>http://evil.example</Endpoint><Bucket>other</Bucket><Key>forged</Key>"
                         b"<RetryAfter>0</RetryAfter><Error>x</Error>")
        return xml_answer(conn, method, b"403 Forbidden", body)
    if mode == "log-injection":
        body = error_doc(b"AccessDenied", b"denied\r\nobjstore: PutObject PUT b/k: 200 in 0.001 s (attempt 1)"
                         b"\n\x1b[2J\x1b]0;owned\x07 &#x1b;[31m red")
        return xml_answer(conn, method, b"403 Forbidden", body)
    if mode == "random-codes":
        code = ("Invented%08d" % random.randrange(10 ** 8)).encode()
        return xml_answer(conn, method, b"400 Bad Request", error_doc(code, b"a code never seen before"))
    return None


def answer(conn, method, mode, headers=()):
    """Sends the mode's answer; returns whether the connection stays open."""
    more = answer_more(conn, method, mode, headers)
    if more is not None:
        return more
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
    if mode == "trickle-head":
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + b"X-Slow: ")
        while True:
            time.sleep(1)
            conn.sendall(b"x")
    if mode == "trickle-chunked":
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + b"Transfer-Encoding: chunked\r\n\r\n")
        while True:
            time.sleep(1)
            conn.sendall(b"1\r\nx\r\n")
    if mode == "trickle-chunk-size":
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + common + b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n")
        while True:  # a chunk-size line of zeros that never ends
            time.sleep(1)
            conn.sendall(b"0")
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


SECRET = ""


def main():
    global SECRET
    port = int(sys.argv[1])
    SECRET = sys.argv[3] if len(sys.argv) > 3 else ""
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    srv.settimeout(0.5)
    deadline = time.monotonic() + lifetime
    print("listening %d" % srv.getsockname()[1], flush=True)
    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
    srv.close()


if __name__ == "__main__":
    main()
