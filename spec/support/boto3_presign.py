"""Presigns S3 URLs with boto3 at a fixed clock, for cross-checking objstore.

Reads JSON from stdin: {"access_key", "secret_key", "session_token"?, "region",
"endpoint", "time" (epoch seconds), "expires", "addressing"? ("path" or "virtual"),
"requests": [{"method", "bucket", "key", "operation"?, "params"?}]} and prints a
JSON list of URLs. "operation" is a boto3 client method name (default: the
method's object operation, e.g. upload_part); "params" are more boto3 parameters
(ResponseContentType, ContentType, ContentMD5, VersionId, UploadId, PartNumber).
"""
import json
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boto3_clock  # noqa: E402

spec = json.load(sys.stdin)
boto3_clock.fix(spec["time"])

client = boto3_clock.s3_client(spec)
methods = {"GET": "get_object", "PUT": "put_object", "HEAD": "head_object", "DELETE": "delete_object"}
urls = []
for r in spec["requests"]:
    params = {"Bucket": r["bucket"], "Key": r["key"]}
    params.update(r.get("params") or {})
    urls.append(
        client.generate_presigned_url(
            r.get("operation") or methods[r["method"]],
            Params=params,
            ExpiresIn=spec["expires"],
            HttpMethod=r["method"],
        )
    )
json.dump(urls, sys.stdout)
