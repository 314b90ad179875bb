#!/usr/bin/env python3
"""For spec/support/ngx_nonblocking.sh: GET URL every GAP seconds on one
keep-alive connection (no process started per probe, so the figures are
the worker's, not a fork's) and print "probe <seconds> <http code> <due>
<raw>" per request. Probes are due on a fixed schedule, one every GAP
seconds from the first (due: seconds since then), and <seconds> is counted
from when the probe was due, not from when it could be sent: a worker
stalled for 0.3 s makes every probe due meanwhile wait (wrk2's correction
of coordinated omission), where timing only the request (<raw>) would show
one slow probe among hundreds. Stops after COUNT
probes, or (COUNT 0) once the file STOP exists; bounded by a 10 s
timeout per request and LIMIT seconds overall.
Usage: ngx_probe.py URL GAP COUNT LIMIT [STOP]"""
import http.client
import os
import sys
import time
import urllib.parse


def main():
    url, gap, count, limit = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    stop = sys.argv[5] if len(sys.argv) > 5 else None
    u = urllib.parse.urlsplit(url)
    conn = None
    t0 = time.monotonic()
    n = 0
    due = t0
    while time.monotonic() - t0 < limit:
        if count and n >= count:
            break
        if not count and os.path.exists(stop):
            break
        if conn is None:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        start = time.monotonic()
        try:
            conn.request("GET", u.path or "/")
            r = conn.getresponse()
            r.read()
            code = r.status
        except (OSError, http.client.HTTPException):
            code = 0
            conn.close()
            conn = None
        end = time.monotonic()
        print("probe %.6f %d %.3f %.6f" % (end - due, code, due - t0, end - start), flush=True)
        n += 1
        due += gap


main()
