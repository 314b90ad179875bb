"""Fixes the clock botocore signs with, for the cross-check scripts here.

botocore signs in Python (botocore.auth) or, when awscrt is installed, in
botocore.crt.auth; both read datetime.datetime.utcnow(). `fix(now)` makes
that return `now()` (a naive UTC datetime) in both.
"""
import datetime

import botocore.auth

try:
    import botocore.crt.auth as crt_auth
except ImportError:
    crt_auth = None


def fix(now):
    class FixedDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return now()

    module = type("FixedDatetimeModule", (), {"datetime": FixedDatetime, "timezone": datetime.timezone,
                                              "timedelta": datetime.timedelta})
    botocore.auth.datetime = module
    if crt_auth is not None:
        crt_auth.datetime = module


def utc(epoch):
    """The naive UTC datetime of epoch seconds."""
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)
