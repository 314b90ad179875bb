"""boto3 side of the interop spec, against a real server.

usage: boto3_interop.py put|get ENDPOINT BUCKET DIR < keys.json
  put: uploads DIR/<i> as each key i (0-based index into the JSON list)
  get: downloads each key into DIR/<i>
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
"""
import json
import os
import sys

import boto3
from botocore.config import Config

mode, endpoint, bucket, directory = sys.argv[1:5]
keys = json.load(sys.stdin)
client = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
)
for i, key in enumerate(keys):
    path = os.path.join(directory, str(i))
    if mode == "put":
        with open(path, "rb") as f:
            client.put_object(Bucket=bucket, Key=key, Body=f.read())
    else:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        with open(path, "wb") as f:
            f.write(body)
print("ok", len(keys))
