"""What the boto3 cross-check scripts (boto3_presign.py, boto3_presign_post.py)
share: a fixed clock for botocore, and the S3 client their JSON input describes.
botocore signs in Python (botocore.auth) or, when awscrt is installed, in
botocore.crt.auth, and builds POST policies in botocore.signers; all read
datetime.datetime.utcnow()."""
import datetime
import types

import boto3
from botocore.config import Config


def s3_client(spec):
    """The S3 client for {access_key, secret_key, session_token?, region, endpoint, addressing?}."""
    return boto3.client(
        "s3",
        aws_access_key_id=spec["access_key"],
        aws_secret_access_key=spec["secret_key"],
        aws_session_token=spec.get("session_token"),
        region_name=spec["region"],
        endpoint_url=spec["endpoint"],
        config=Config(signature_version="s3v4", s3={"addressing_style": spec.get("addressing", "path")}),
    )


def fix(epoch_seconds):
    fixed = datetime.datetime.fromtimestamp(epoch_seconds, datetime.timezone.utc).replace(tzinfo=None)

    class _FixedDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

    module = types.SimpleNamespace(datetime=_FixedDatetime, timezone=datetime.timezone, timedelta=datetime.timedelta)
    import botocore.auth
    import botocore.signers

    botocore.auth.datetime = module
    botocore.signers.datetime = module
    try:
        import botocore.crt.auth

        botocore.crt.auth.datetime = module
    except ImportError:
        pass
