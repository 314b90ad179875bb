"""Presigned POST forms by boto3 (generate_presigned_post) at a fixed clock,
for cross-checking objstore's presigned_post.

Reads JSON from stdin: {"access_key", "secret_key", "session_token"?, "region",
"endpoint", "addressing", "time" (epoch seconds), "posts": [{"bucket", "key",
"fields", "conditions", "expires"}]} and prints a JSON list of {"url", "fields"}.

One change to boto3: botocore writes the policy with json.dumps' defaults
(separators ", " and ": ", non-ASCII escaped); here it writes as objstore
and ali-oss (JSON.stringify) do, compact and in UTF-8, so the documents can
be compared byte for byte and the signatures with them. The same JSON value
either way; everything else is boto3's own.
"""
import json
import os
import sys
import types

import botocore.auth

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boto3_clock  # noqa: E402

spec = json.load(sys.stdin)
boto3_clock.fix(spec["time"])
botocore.auth.json = types.SimpleNamespace(
    dumps=lambda o, **kw: json.dumps(o, separators=(",", ":"), ensure_ascii=False), loads=json.loads
)

client = boto3_clock.s3_client(spec)
out = []
for p in spec["posts"]:
    out.append(
        client.generate_presigned_post(
            p["bucket"], p["key"], Fields=p.get("fields"), Conditions=p.get("conditions"), ExpiresIn=p["expires"]
        )
    )
json.dump(out, sys.stdout)
