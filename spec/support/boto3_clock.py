"""Fixes botocore's clock for the boto3 cross-check scripts (boto3_presign.py,
boto3_presign_post.py): botocore signs in Python (botocore.auth) or, when
awscrt is installed, in botocore.crt.auth, and builds POST policies in
botocore.signers; all read datetime.datetime.utcnow()."""
import datetime
import types


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
