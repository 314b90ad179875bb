"""boto3 generate_presigned_url throughput on one core (best of 5 rounds)."""
import sys
import time

import boto3
from botocore.config import Config

ROUND = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
client = boto3.client(
    "s3",
    aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    region_name="us-east-1",
    config=Config(signature_version="s3v4"),
)
best = 0.0
for _ in range(5):
    n = 0
    t0 = time.process_time()
    t1 = t0
    while t1 - t0 < ROUND:
        for _ in range(100):
            client.generate_presigned_url(
                "get_object", Params={"Bucket": "examplebucket", "Key": "photos/2024/img.jpg"}, ExpiresIn=3600
            )
        n += 100
        t1 = time.process_time()
    best = max(best, n / (t1 - t0))
print(f"presign {best:.0f}/s")
