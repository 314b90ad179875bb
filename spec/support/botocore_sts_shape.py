"""What botocore sends for AWS STS calls, at a fixed clock, for comparison
with objstore.sts (spec/sts_shape_spec.lua). Nothing is sent: a
before-send handler records the prepared request (method, URL, headers,
body) and stops the call by raising.

Reads JSON from stdin: {"cases": [{"id", "endpoint", "region", "access_key",
"secret_key", "session_token"?, "operation" (botocore's snake_case name),
"params" ([[name, value], ...] in botocore's parameter names: botocore
serialises them in the order given), "time" (epoch seconds)}]} and prints
{"version", "cases": [{"id", "method", "url", "headers", "body"}]}.
"""
import json
import sys

import botocore
import botocore.session
import boto3_clock
from botocore.config import Config

spec = json.load(sys.stdin)


class Captured(Exception):
    pass


out = []
session = botocore.session.get_session()
for c in spec["cases"]:
    boto3_clock.fix(c["time"])
    client = session.create_client(
        "sts",
        region_name=c["region"],
        endpoint_url=c["endpoint"],
        aws_access_key_id=c.get("access_key"),
        aws_secret_access_key=c.get("secret_key"),
        aws_session_token=c.get("session_token"),
        config=Config(retries={"max_attempts": 1}),
    )
    seen = {}

    def record(request, **_):
        body = request.body
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        seen.update(method=request.method, url=request.url, body=body,
                    headers={k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()})
        raise Captured()

    client.meta.events.register("before-send.sts", record)
    try:
        getattr(client, c["operation"])(**dict(c.get("params") or []))
    except Captured:
        pass
    seen["id"] = c["id"]
    out.append(seen)

print(json.dumps({"version": botocore.__version__, "cases": out}))
