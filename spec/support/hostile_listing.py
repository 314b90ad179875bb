#!/usr/bin/env python3
"""A hostile S3 listing server for the data-safety specs
(spec/listing_safety_spec.lua, and any spec that needs a store that lies in
its listings). A real HTTP server on 127.0.0.1 with a small in-memory object
set; no signature is checked. It answers:

  GET  /BUCKET?list-type=2        ListObjectsV2 (prefix, delimiter, start-after,
                                  continuation-token, max-keys, encoding-type=url)
  GET  /BUCKET                    ListObjects v1 (prefix, delimiter, marker, max-keys)
  HEAD /BUCKET                    200
  HEAD, GET /BUCKET/KEY           the object (content = the key's bytes, ETag = its MD5);
                                  404 NoSuchKey; an archived object's GET is 403 InvalidObjectState
  PUT  /BUCKET/KEY                stores the body (single PUT only; no multipart)
  POST /BUCKET?delete             DeleteObjects: the <Key>s are parsed, recorded and removed
  DELETE /BUCKET/KEY              DeleteObject
Both path style (Host 127.0.0.1:PORT or localhost:PORT) and virtual-host style
(Host BUCKET.localhost:PORT, which curl resolves to 127.0.0.1 by itself, for
OSS clients) are understood.

Control (paths under /__, which no bucket can have):
  GET  /__log                     JSON { mode, page_size, requests = [ {method, path, query,
                                  host, bucket, key, op, delete_keys?, quiet?, status}, ... ] }
  POST /__mode?mode=M[&page_size=N][&budget=N]   sets the mode (page size, request
                                  budget), clears the log and restores the initial objects
  POST /__reset                   clears the log and restores the initial objects

Modes (--mode or POST /__mode):
  normal              a correct S3 listing
  ignore_prefix       prefix= is ignored: keys outside the prefix are listed too
  repeat_token        every V2 page is the first page, IsTruncated=true and the same
                      NextContinuationToken; every v1 page repeats the same NextMarker
  truncated_no_token  every page says IsTruncated=true and carries no
                      NextContinuationToken / NextMarker (the pages themselves advance)
  fail_halfway        the first page is fine; a request with a continuation token or
                      marker (page 2 onwards) answers 500 InternalError, every time
  bad_keys            the object set also holds hostile keys: invalid UTF-8 (sent
                      percent-encoded with EncodingType=url, e.g. %FF), "../escape",
                      "/abs", "a//b", control characters (also under p/)
  archived            p/b is GLACIER, p/c is DEEP_ARCHIVE (their GET is 403 InvalidObjectState)
  unsorted            each page's keys in descending order
  quiet_empty         DeleteObjects with <Quiet>true</Quiet> answers 200 with an empty
                      body (as Alibaba OSS documents); listings are normal
  delete_other_root   DeleteObjects answers 200 with another XML document
                      (<PostResponse>) and deletes nothing
  delete_dup_errors   DeleteObjects refuses p/b and p/d (AccessDenied), each
                      <Error> sent twice
In every mode DeleteObjects answers a per-key AccessDenied <Error> for a key
starting with "deny/", and 500 InternalError for a whole batch holding a key
starting with "fail/".

The initial objects: other/outside, p/a, p/b, p/c, p/d, p/e, p/sub/f, pp, q/x
(plus the bad keys in bad_keys mode). A page holds at most page_size entries
(default 2, so a handful of keys is several pages).

Usage: hostile_listing.py [--port P | --ports LO-HI] [--mode M] [--page-size N]
                          [--lifetime SECONDS] [--budget REQUESTS]
BUDGET (default 300, also POST /__mode?...&budget=N) S3 requests are answered
after each reset; every later one is 403 AccessDenied "request budget
exhausted", so a client that loops without end is stopped (and a spec against
it stays bounded).
Binds the first free port (127.0.0.1 only), prints "listening PORT" on stdout,
and exits by itself after LIFETIME seconds (default 300).
"""
import argparse
import base64
import hashlib
import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

MODES = ("normal", "ignore_prefix", "repeat_token", "truncated_no_token", "fail_halfway", "bad_keys",
         "archived", "unsorted", "quiet_empty", "delete_other_root",
         "delete_dup_errors")
BASE_KEYS = [b"other/outside", b"p/a", b"p/b", b"p/c", b"p/d", b"p/e", b"p/sub/f", b"pp", b"q/x"]
BAD_KEYS = [b"p/\xff\xfe-bad-utf8", b"p/../escape", b"p/x/../../../escape2", b"p//abs", b"p/a//b",
            b"p/ctl-\x01\x1f", b"../escape", b"/abs", b"a//b", b"ctl-\x07"]
ARCHIVED = {b"p/b": "GLACIER", b"p/c": "DEEP_ARCHIVE"}
LAST_MODIFIED = "2026-01-01T00:00:00.000Z"
HTTP_DATE = "Thu, 01 Jan 2026 00:00:00 GMT"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'

STATE = {"mode": "normal", "page_size": 2, "objects": {}, "log": [], "budget": 300}
LOCK = threading.Lock()


def initial_objects(mode):
    keys = list(BASE_KEYS) + (BAD_KEYS if mode == "bad_keys" else [])
    return {k: k for k in keys}


def reset(mode=None):
    if mode is not None:
        STATE["mode"] = mode
    STATE["objects"] = initial_objects(STATE["mode"])
    STATE["log"] = []


def etag(body):
    return '"' + hashlib.md5(body).hexdigest() + '"'


def enc_key(key, url):
    """A key for the XML: percent-encoded (EncodingType=url) or escaped text."""
    if url:
        return urllib.parse.quote(key, safe=b"/")
    return escape(key.decode("utf-8", "replace"))


def text(b):
    return b.decode("utf-8", "backslashreplace")


def error_xml(code, message):
    return (XML_HEAD + "<Error><Code>%s</Code><Message>%s</Message><RequestId>hostile-listing</RequestId>"
            "</Error>" % (code, escape(message))).encode()


def list_entries(keys, prefix, delimiter, after):
    """Yields (kind, value, last_key) past `after`: kind "key" or "prefix"."""
    seen = None
    for k in keys:
        if after is not None and k <= after:
            continue
        if delimiter:
            rest = k[len(prefix):] if k.startswith(prefix) else k
            i = rest.find(delimiter)
            if i >= 0:
                cp = k[: len(k) - len(rest) + i + len(delimiter)]
                if cp == seen:
                    continue
                seen = cp
                yield "prefix", cp, cp + b"\xff"
                continue
        yield "key", k, k


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hostile-listing"

    def log_message(self, *args):
        pass

    # -- plumbing -------------------------------------------------------
    def send(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        hs = {"Content-Type": "application/xml", "x-amz-request-id": "hostile-listing"}
        hs.update(headers or {})
        for k, v in hs.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head and self.command != "HEAD":  # a HEAD answer never has a body
            self.wfile.write(body)
        self.entry["status"] = status

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 64 << 20:
            raise ValueError("body too large")
        return self.rfile.read(n) if n > 0 else b""

    def parse(self):
        raw_path, _, raw_query = self.path.partition("?")
        query = {}
        for part in raw_query.split("&") if raw_query else []:
            name, eq, value = part.partition("=")
            query[urllib.parse.unquote(name)] = urllib.parse.unquote_to_bytes(value) if eq else b""
        path = urllib.parse.unquote_to_bytes(raw_path)
        host = self.headers.get("Host", "")
        m = re.match(r"^(.+)\.localhost(:\d+)?$", host)
        if m:
            bucket, key = m.group(1).encode(), path[1:]
        else:
            bucket, _, key = path[1:].partition(b"/")
        self.query, self.bucket, self.key = query, bucket, key
        self.entry = {"method": self.command, "path": text(path), "query": {k: text(v) for k, v in query.items()},
                      "host": host, "bucket": text(bucket), "key": text(key)}

    def handle_any(self):
        self.parse()
        if self.bucket.startswith(b"__"):
            return self.control()
        with LOCK:
            STATE["log"].append(self.entry)
            spent = len(STATE["log"]) > STATE["budget"]
        if spent:
            # A client looping without end is stopped here, so that a spec
            # against a looping client is bounded too.
            return self.send(403, error_xml("AccessDenied", "hostile_listing: request budget exhausted"))
        try:
            self.dispatch()
        except Exception as e:  # a bug here must still answer
            self.send(500, error_xml("InternalError", "hostile_listing: " + repr(e)))

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any

    def control(self):
        name = self.bucket.decode()
        if name == "__log":
            with LOCK:
                body = json.dumps({"mode": STATE["mode"], "page_size": STATE["page_size"],
                                   "requests": STATE["log"]}).encode()
            return self.send(200, body, {"Content-Type": "application/json"})
        if name == "__mode" and self.command == "POST":
            mode = self.query.get("mode", b"").decode()
            if mode not in MODES:
                return self.send(400, b"unknown mode", {"Content-Type": "text/plain"})
            with LOCK:
                if "page_size" in self.query:
                    STATE["page_size"] = max(1, int(self.query["page_size"]))
                if "budget" in self.query:
                    STATE["budget"] = max(1, int(self.query["budget"]))
                reset(mode)
            return self.send(200, b"ok", {"Content-Type": "text/plain"})
        if name == "__reset" and self.command == "POST":
            with LOCK:
                reset()
            return self.send(200, b"ok", {"Content-Type": "text/plain"})
        return self.send(404, b"no such control", {"Content-Type": "text/plain"})

    # -- S3 -------------------------------------------------------------
    def dispatch(self):
        q, m = self.query, self.command
        if self.key == b"":
            if m == "GET" and q.get("list-type") == b"2":
                self.entry["op"] = "ListObjectsV2"
                return self.listing(v2=True)
            if m == "GET" and not (set(q) - {"prefix", "delimiter", "marker", "max-keys", "encoding-type"}):
                self.entry["op"] = "ListObjects"
                return self.listing(v2=False)
            if m == "HEAD":
                self.entry["op"] = "HeadBucket"
                return self.send(200, head=True)
            if m == "POST" and "delete" in q:
                self.entry["op"] = "DeleteObjects"
                return self.delete_objects()
            return self.send(501, error_xml("NotImplemented", "not implemented by hostile_listing"))
        if m in ("GET", "HEAD"):
            self.entry["op"] = "GetObject" if m == "GET" else "HeadObject"
            return self.get_object(m == "HEAD")
        if m == "PUT" and not q:
            self.entry["op"] = "PutObject"
            body = self.read_body()
            with LOCK:
                STATE["objects"][self.key] = body
            return self.send(200, headers={"ETag": etag(body)})
        if m == "DELETE" and not q:
            self.entry["op"] = "DeleteObject"
            with LOCK:
                STATE["objects"].pop(self.key, None)
            return self.send(204)
        return self.send(501, error_xml("NotImplemented", "not implemented by hostile_listing"))

    def get_object(self, head):
        with LOCK:
            body = STATE["objects"].get(self.key)
            mode = STATE["mode"]
        if body is None:
            return self.send(404, b"" if head else error_xml("NoSuchKey", "The specified key does not exist."),
                             head=head)
        sc = ARCHIVED.get(self.key) if mode == "archived" else None
        hs = {"Content-Type": "application/octet-stream", "ETag": etag(body), "Last-Modified": HTTP_DATE}
        if sc:
            hs["x-amz-storage-class"] = sc
            if not head:
                return self.send(403, error_xml("InvalidObjectState",
                                                "The operation is not valid for the object's storage class"))
        return self.send(200, body, hs, head=head)

    def listing(self, v2):
        q = self.query
        with LOCK:
            mode, size = STATE["mode"], STATE["page_size"]
            objects = dict(STATE["objects"])
        url = q.get("encoding-type") == b"url"
        prefix, delimiter = q.get("prefix", b""), q.get("delimiter", b"")
        try:
            max_keys = int(q.get("max-keys") or 1000)
        except ValueError:
            max_keys = 1000
        size = max(1, min(size, max_keys))
        if v2:
            token = q.get("continuation-token")
            after = base64.urlsafe_b64decode(token) if token and token != b"same-token" else q.get("start-after")
            paging = token is not None
        else:
            after = q.get("marker") or None
            paging = after is not None
        if mode == "fail_halfway" and paging:
            return self.send(500, error_xml("InternalError", "We encountered an internal error. Please try again."))
        if mode == "repeat_token":
            after = q.get("start-after") if v2 else None
        keys = sorted(objects)
        if mode != "ignore_prefix":
            keys = [k for k in keys if k.startswith(prefix)]
        contents, prefixes, last, more = [], [], None, False
        for kind, value, last_key in list_entries(keys, prefix, delimiter, after):
            if len(contents) + len(prefixes) == size:
                more = True
                break
            (contents if kind == "key" else prefixes).append(value)
            last = last_key
        if mode == "unsorted":
            contents.reverse()
        truncated = more or mode in ("repeat_token", "truncated_no_token")
        out = [XML_HEAD, "<ListBucketResult%s><Name>%s</Name>" % (NS, escape(text(self.bucket)))]
        out.append("<Prefix>%s</Prefix>" % enc_key(prefix, url))
        if delimiter:
            out.append("<Delimiter>%s</Delimiter>" % enc_key(delimiter, url))
        out.append("<MaxKeys>%d</MaxKeys>" % max_keys)
        if url:
            out.append("<EncodingType>url</EncodingType>")
        out.append("<IsTruncated>%s</IsTruncated>" % ("true" if truncated else "false"))
        if v2:
            out.append("<KeyCount>%d</KeyCount>" % (len(contents) + len(prefixes)))
            if "continuation-token" in q:
                out.append("<ContinuationToken>%s</ContinuationToken>" % escape(text(q["continuation-token"])))
            if mode == "repeat_token":
                out.append("<NextContinuationToken>same-token</NextContinuationToken>")
            elif more and mode != "truncated_no_token":
                out.append("<NextContinuationToken>%s</NextContinuationToken>"
                           % base64.urlsafe_b64encode(last).decode())
        else:
            out.append("<Marker>%s</Marker>" % enc_key(q.get("marker", b""), url))
            if mode == "repeat_token" and last is not None:
                out.append("<NextMarker>%s</NextMarker>" % enc_key(last, url))
            elif more and delimiter and mode != "truncated_no_token":
                out.append("<NextMarker>%s</NextMarker>" % enc_key(last, url))
        for k in contents:
            body = objects[k]
            sc = ARCHIVED.get(k, "STANDARD") if mode == "archived" else "STANDARD"
            out.append("<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>%s</ETag><Size>%d</Size>"
                       "<StorageClass>%s</StorageClass></Contents>"
                       % (enc_key(k, url), LAST_MODIFIED, escape(etag(body)), len(body), sc))
        for p in prefixes:
            out.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % enc_key(p, url))
        out.append("</ListBucketResult>")
        return self.send(200, "".join(out).encode())

    def delete_objects(self):
        body = self.read_body()
        keys = [_xml_unescape(k) for k in re.findall(rb"<Key>(.*?)</Key>", body, re.S)]
        quiet = re.search(rb"<Quiet>\s*true\s*</Quiet>", body) is not None
        self.entry["delete_keys"] = [text(k) for k in keys]
        self.entry["quiet"] = quiet
        with LOCK:
            mode = STATE["mode"]
        if mode == "delete_other_root":
            # a server that took the POST for something else: a 200 with
            # another document, nothing deleted
            return self.send(200, (XML_HEAD + "<PostResponse%s><Key>x</Key></PostResponse>" % NS).encode())
        if any(k.startswith(b"fail/") for k in keys):
            return self.send(500, error_xml("InternalError", "We encountered an internal error. Please try again."))
        out = [XML_HEAD, "<DeleteResult%s>" % NS]
        with LOCK:
            for k in keys:
                if k.startswith(b"deny/") or (mode == "delete_dup_errors" and k in (b"p/b", b"p/d")):
                    for _ in range(2 if mode == "delete_dup_errors" else 1):
                        out.append("<Error><Key>%s</Key><Code>AccessDenied</Code><Message>Access Denied</Message>"
                                   "</Error>" % escape(text(k)))
                    continue
                STATE["objects"].pop(k, None)
                if not quiet:
                    out.append("<Deleted><Key>%s</Key></Deleted>" % escape(text(k)))
        out.append("</DeleteResult>")
        if quiet and mode == "quiet_empty":
            return self.send(200, b"")
        return self.send(200, "".join(out).encode())


def _xml_unescape(b):
    def ref(m):
        s = m.group(1)
        if s.startswith(b"#x"):
            return chr(int(s[2:], 16)).encode("utf-8")
        if s.startswith(b"#"):
            return chr(int(s[1:])).encode("utf-8")
        return {b"lt": b"<", b"gt": b">", b"amp": b"&", b"quot": b'"', b"apos": b"'"}[s]
    return re.sub(rb"&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);", ref, b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    ap.add_argument("--ports", default="19300-19399")
    ap.add_argument("--mode", default="normal", choices=MODES)
    ap.add_argument("--page-size", type=int, default=2)
    ap.add_argument("--lifetime", type=float, default=300)
    ap.add_argument("--budget", type=int, default=300)
    a = ap.parse_args()
    STATE["page_size"] = max(1, a.page_size)
    STATE["budget"] = max(1, a.budget)
    reset(a.mode)
    lo, hi = (a.port, a.port) if a.port else map(int, a.ports.split("-"))
    srv = None
    for port in range(lo, hi + 1):
        try:
            srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            break
        except OSError:
            continue
    if srv is None:
        print("no free port in %d-%d" % (lo, hi), file=sys.stderr)
        sys.exit(1)
    srv.daemon_threads = True
    print("listening %d" % srv.server_address[1], flush=True)
    threading.Timer(a.lifetime, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
