"""Health probe for the test servers: a SigV4-signed ListBuckets (GET /).

usage: signed_get.py ENDPOINT ACCESS_KEY SECRET_KEY REGION; exit 0 on HTTP 200.
Written apart from objstore on purpose: a server's health must not depend on
the code under test.
"""
import sys, hmac, hashlib, datetime, urllib.request, urllib.error
ep, ak, sk, region = sys.argv[1:5]
host = ep.split('://', 1)[1]
amz = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
day = amz[:8]
ph = hashlib.sha256(b'').hexdigest()
sh = 'host;x-amz-content-sha256;x-amz-date'
creq = 'GET\n/\n\nhost:%s\nx-amz-content-sha256:%s\nx-amz-date:%s\n\n%s\n%s' % (host, ph, amz, sh, ph)
scope = '%s/%s/s3/aws4_request' % (day, region)
sts = 'AWS4-HMAC-SHA256\n%s\n%s\n%s' % (amz, scope, hashlib.sha256(creq.encode()).hexdigest())
k = ('AWS4' + sk).encode()
for m in (day, region, 's3', 'aws4_request'):
    k = hmac.new(k, m.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
auth = 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (ak, scope, sh, sig)
req = urllib.request.Request(ep + '/', headers={'x-amz-date': amz, 'x-amz-content-sha256': ph,
                                                'Authorization': auth})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    r = opener.open(req, timeout=5)
    sys.exit(0 if r.status == 200 else 1)
except urllib.error.HTTPError as e:
    sys.stderr.write('HTTP %d %s\n' % (e.code, e.read()[:300]))
except Exception as e:
    sys.stderr.write('%s\n' % e)
sys.exit(1)
