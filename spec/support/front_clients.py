"""Real S3 clients against the objstore front, for spec/front_server_spec.lua.

Debian's python3-boto3/botocore. The front's URL comes from FRONT_URL, the
tenant's keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Every command
prints one JSON document on stdout.

  put FILE BUCKET KEY             boto3 put_object (defaults), the ETag
  get BUCKET KEY OUT [RANGE]      boto3 get_object into OUT
  list BUCKET PREFIX DELIM MAX    list_objects_v2 page by page (MaxKeys=MAX)
  presign BUCKET KEY [OP]         a presigned URL (generate_presigned_url; OP default get_object)
  call OP JSON                    any boto3 call: status and error code, or
                                  status and result (the response, dates as
                                  strings, without Body and ResponseMetadata)
  raw METHOD PATH [opts]          a request signed by botocore's S3SigV4Auth,
                                  sent as it is by http.client:
                                  --body FILE, --sha256 HEX, --tamper,
                                  --header NAME:VALUE, --dup NAME:VALUE (one more
                                  line of that header, after signing)
"""
import http.client
import json
import os
import sys

import boto3
import botocore
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

URL = os.environ["FRONT_URL"]
AK = os.environ["AWS_ACCESS_KEY_ID"]
SK = os.environ["AWS_SECRET_ACCESS_KEY"]


def client():
    return boto3.client("s3", endpoint_url=URL, region_name="us-east-1", aws_access_key_id=AK,
                        aws_secret_access_key=SK,
                        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1},
                                      connect_timeout=10, read_timeout=60))


def out(doc):
    sys.stdout.write(json.dumps(doc) + "\n")


def main(argv):
    cmd = argv[0]
    s3 = client()
    if cmd == "put":
        with open(argv[1], "rb") as f:
            r = s3.put_object(Bucket=argv[2], Key=argv[3], Body=f)
        out({"etag": r["ETag"], "status": r["ResponseMetadata"]["HTTPStatusCode"]})
    elif cmd == "get":
        kw = {"Bucket": argv[1], "Key": argv[2]}
        if len(argv) > 4:
            kw["Range"] = argv[4]
        r = s3.get_object(**kw)
        with open(argv[3], "wb") as f:
            f.write(r["Body"].read())
        out({"status": r["ResponseMetadata"]["HTTPStatusCode"], "etag": r["ETag"],
             "length": r["ContentLength"], "metadata": r.get("Metadata", {})})
    elif cmd == "list":
        pages, token = [], None
        for _ in range(50):
            kw = {"Bucket": argv[1], "Prefix": argv[2], "MaxKeys": int(argv[4])}
            if argv[3]:
                kw["Delimiter"] = argv[3]
            if token:
                kw["ContinuationToken"] = token
            r = s3.list_objects_v2(**kw)
            pages.append({"keys": [o["Key"] for o in r.get("Contents", [])],
                          "prefixes": [p["Prefix"] for p in r.get("CommonPrefixes", [])],
                          "truncated": r["IsTruncated"], "key_count": r["KeyCount"],
                          "token": r.get("NextContinuationToken")})
            if not r["IsTruncated"]:
                break
            token = r["NextContinuationToken"]
        out({"pages": pages})
    elif cmd == "presign":
        op = argv[3] if len(argv) > 3 else "get_object"
        out({"url": s3.generate_presigned_url(op, Params={"Bucket": argv[1], "Key": argv[2]},
                                              ExpiresIn=300)})
    elif cmd == "call":
        try:
            r = getattr(s3, argv[1])(**json.loads(argv[2]))
            status = r.pop("ResponseMetadata")["HTTPStatusCode"]
            r.pop("Body", None)
            out({"status": status, "result": json.loads(json.dumps(r, default=str))})
        except botocore.exceptions.ClientError as e:
            out({"status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                 "code": e.response["Error"].get("Code")})
    elif cmd == "raw":
        method, path, rest = argv[1], argv[2], argv[3:]
        body, sha, tamper, headers, dups = b"", None, False, {}, []
        i = 0
        while i < len(rest):
            if rest[i] == "--body":
                with open(rest[i + 1], "rb") as f:
                    body = f.read()
                i += 2
            elif rest[i] == "--sha256":
                sha = rest[i + 1]
                i += 2
            elif rest[i] == "--tamper":
                tamper = True
                i += 1
            elif rest[i] == "--dup":
                dups.append(rest[i + 1].split(":", 1))
                i += 2
            elif rest[i] == "--header":
                n, v = rest[i + 1].split(":", 1)
                headers[n] = v
                i += 2
            else:
                raise SystemExit("unknown option " + rest[i])
        host = URL.split("://", 1)[1]
        req = AWSRequest(method=method, url=URL + path, data=body, headers=dict(headers))
        if sha:
            req.headers["X-Amz-Content-SHA256"] = sha
        signer = S3SigV4Auth(Credentials(AK, SK), "s3", "us-east-1")
        if sha:
            signer.payload = lambda request: sha  # what the client claims, not what it sends
        signer.add_auth(req)
        hdrs = dict(req.headers.items())
        if tamper:
            a = hdrs["Authorization"]
            last = a[-1]
            hdrs["Authorization"] = a[:-1] + ("0" if last != "0" else "1")
        conn = http.client.HTTPConnection(host, timeout=60)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        for n, v in hdrs.items():
            if n.lower() != "host":
                conn.putheader(n, v)
        for n, v in dups:
            conn.putheader(n, v)
        if body or method in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        data = r.read()
        out({"status": r.status, "body": data.decode("utf-8", "replace"),
             "request_id": r.getheader("x-amz-request-id"), "retry_after": r.getheader("Retry-After")})
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
