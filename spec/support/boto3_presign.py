"""Presigns S3 URLs with boto3 at a fixed clock, for cross-checking objstore.

Reads JSON from stdin: {"access_key", "secret_key", "session_token"?, "region",
"endpoint", "time" (epoch seconds), "expires", "requests": [{"method", "bucket", "key"}]}
and prints a JSON list of URLs.
"""
import json
import sys

import boto3
import botocore_clock
from botocore.config import Config

spec = json.load(sys.stdin)
botocore_clock.fix(lambda: botocore_clock.utc(spec["time"]))

client = boto3.client(
    "s3",
    aws_access_key_id=spec["access_key"],
    aws_secret_access_key=spec["secret_key"],
    aws_session_token=spec.get("session_token"),
    region_name=spec["region"],
    endpoint_url=spec["endpoint"],
    config=Config(signature_version="s3v4", s3={"addressing_style": spec.get("addressing", "path")}),
)
methods = {"GET": "get_object", "PUT": "put_object", "HEAD": "head_object", "DELETE": "delete_object"}
urls = []
for r in spec["requests"]:
    urls.append(
        client.generate_presigned_url(
            methods[r["method"]],
            Params={"Bucket": r["bucket"], "Key": r["key"]},
            ExpiresIn=spec["expires"],
            HttpMethod=r["method"],
        )
    )
json.dump(urls, sys.stdout)
