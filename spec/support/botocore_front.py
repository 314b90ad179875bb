"""Signs S3 requests with botocore at a fixed clock, offline, for
spec/front_sigv4_spec.lua (the verifying half of an S3 front).

Reads JSON from stdin: {"access_key", "secret_key", "region", "time" (epoch
seconds), "endpoint", "calls": [...]} and prints a JSON list, one entry per
call: {"method", "url", "headers": [[name, value], ...], "body_hex"}.
A call is one of
  {"kind": "client", "addressing": "path"|"virtual", "endpoint"?, "operation", "params"}:
      a boto3 client call; its request is captured before it is sent;
  {"kind": "presign", "addressing", "operation", "params", "expires", "method"?}:
      boto3 generate_presigned_url (the entry's url; no headers);
  {"kind": "auth", "method", "url", "headers": {...}, "body"}:
      botocore.auth.S3SigV4Auth on an AWSRequest.
Nothing is sent: the capture hook raises before any connection is made."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boto3_clock  # noqa: E402

from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

spec = json.load(sys.stdin)
boto3_clock.fix(spec["time"])


class Captured(Exception):
    def __init__(self, request):
        super().__init__("captured")
        self.request = request


def capture(request, **kwargs):
    raise Captured(request)


def body_hex(body):
    """The body's bytes in hex (JSON strings cannot carry raw bytes)."""
    if body is None:
        return ""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode("utf-8")
    return body.hex()


clients = {}


def client_for(call):
    addressing, endpoint = call.get("addressing", "path"), call.get("endpoint", spec["endpoint"])
    if (addressing, endpoint) not in clients:
        c = boto3_clock.s3_client(dict(spec, addressing=addressing, endpoint=endpoint))
        c.meta.events.register("before-send.s3", capture)
        clients[(addressing, endpoint)] = c
    return clients[(addressing, endpoint)]


out = []
for call in spec["calls"]:
    kind = call["kind"]
    if kind == "client":
        c = client_for(call)
        try:
            getattr(c, call["operation"])(**call["params"])
            raise SystemExit("request was not captured")
        except Captured as cap:
            r = cap.request
            out.append({"method": r.method, "url": r.url, "headers": [[k, v if isinstance(v, str) else v.decode()]
                        for k, v in r.headers.items()], "body_hex": body_hex(r.body)})
    elif kind == "presign":
        c = client_for(call)
        url = c.generate_presigned_url(call["operation"], Params=call["params"], ExpiresIn=call["expires"],
                                       HttpMethod=call.get("method"))
        out.append({"method": call.get("method") or "GET", "url": url, "headers": [], "body_hex": ""})
    else:
        creds = Credentials(spec["access_key"], spec["secret_key"])
        req = AWSRequest(method=call["method"], url=call["url"], headers=call.get("headers") or {},
                         data=call.get("body") or b"")
        S3SigV4Auth(creds, "s3", spec["region"]).add_auth(req)
        out.append({"method": req.method, "url": req.url, "headers": [[k, v if isinstance(v, str) else v.decode()]
                    for k, v in req.headers.items()], "body_hex": body_hex(req.body)})
json.dump(out, sys.stdout)
