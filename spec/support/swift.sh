#!/usr/bin/env bash
# Single-node OpenStack Swift with the s3api middleware (tempauth, one replica,
# memcached) on 127.0.0.1 for objstore's integration tests.
#
# Usage: spec/support/swift.sh start|stop|status|env|restart|wipe|logs
#   start    idempotent: returns at once when healthy; otherwise (re)writes the
#            config, builds the rings if needed, starts memcached + account,
#            container, object and proxy servers and waits for a signed request;
#            fails loudly (last log lines) after SWIFT_START_TIMEOUT seconds.
#   stop     ends exactly the recorded processes (TERM, then KILL), bounded.
#   status   exit 0 iff every process runs and a SigV4-signed request works.
#   env      prints `export` lines for the test suite.
#   wipe     stop + delete the data dir.  logs: tail of every log.
#
# Environment: OBJSTORE_TEST_DIR_SWIFT (default /tmp/objstore-swift), SWIFT_PORT
#   (proxy, 8080), SWIFT_BACKEND_PORT (object; container = +1, account = +2; 6210),
#   SWIFT_MEMCACHED_PORT (11219), SWIFT_START_TIMEOUT (60).
set -euo pipefail

D=${OBJSTORE_TEST_DIR_SWIFT:-/tmp/objstore-swift}
D=${D%/}
PORT=${SWIFT_PORT:-8080}
OBJ_PORT=${SWIFT_BACKEND_PORT:-6210}
CONT_PORT=$(( OBJ_PORT + 1 ))
ACCT_PORT=$(( OBJ_PORT + 2 ))
MC_PORT=${SWIFT_MEMCACHED_PORT:-11219}
TIMEOUT=${SWIFT_START_TIMEOUT:-60}
DNS_NAME=s3.localhost
REGION=us-east-1
AK=test:tester
SK=testing
OTHER_AK=test:tester2        # same account (bucket namespace), not an admin: no access
OTHER_SK=testing2            # to test:tester's buckets unless granted
ENDPOINT="http://127.0.0.1:$PORT"
ETC="$D/etc"
MARK="$D/.objstore-swift"
PY=/usr/bin/python3
NAMES=(proxy object container account memcached)   # stop order
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true

log() { printf 'swift.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; show_logs >&2 || true; exit 1; }
now() { date +%s; }

show_logs() {
  local f
  for f in "$D"/log/*.log; do
    [ -f "$f" ] || continue
    echo "----- last lines of $f"
    tail -n 15 "$f"
  done
}

# ---------------------------------------------------------------- processes
pidfile() { echo "$D/pids/$1.pid"; }

# alive NAME: the recorded process runs and is ours (its command line names our dir).
alive() {
  local f pid
  f=$(pidfile "$1"); [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$D/"
}

# spawn NAME CMD...: own session, stdin closed, no lock fd, output to log/NAME.log.
spawn() {
  local name=$1; shift
  mkdir -p "$D/pids" "$D/log"
  setsid "$@" </dev/null >>"$D/log/$name.log" 2>&1 9>&- &
  echo $! >"$(pidfile "$name")"
}

stop_all() {
  local n any=0 deadline
  for n in "${NAMES[@]}"; do
    alive "$n" && { any=1; kill -TERM "$(cat "$(pidfile "$n")")" 2>/dev/null || true; }
  done
  if [ $any = 1 ]; then
    deadline=$(( $(now) + 5 ))
    while [ "$(now)" -lt "$deadline" ]; do
      any=0
      for n in "${NAMES[@]}"; do alive "$n" && any=1; done
      [ $any = 0 ] && break
      sleep 0.1
    done
    for n in "${NAMES[@]}"; do
      if alive "$n"; then
        log "$n did not stop on SIGTERM, sending SIGKILL"
        kill -KILL "$(cat "$(pidfile "$n")")" 2>/dev/null || true
      fi
    done
    deadline=$(( $(now) + 5 ))
    for n in "${NAMES[@]}"; do
      while alive "$n" && [ "$(now)" -lt "$deadline" ]; do sleep 0.1; done
      alive "$n" && die "could not stop $n"
    done
  fi
  rm -f "$D"/pids/*.pid 2>/dev/null || true
}

# ---------------------------------------------------------------- health
# signed_get AK SK: SigV4-signed ListBuckets (GET /) with region $REGION; exit 0 on 200.
signed_get() {
  "$PY" - "$ENDPOINT" "$1" "$2" "$REGION" <<'EOF'
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
EOF
}

all_alive() { local n; for n in "${NAMES[@]}"; do alive "$n" || return 1; done; }
healthy() { all_alive && signed_get "$AK" "$SK" 2>/dev/null; }
# port_busy PORT: something accepts connections on 127.0.0.1:PORT (no ss/netstat needed)
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# ---------------------------------------------------------------- config
write_configs() {
  mkdir -p "$ETC" "$D/devices/d1" "$D/cache" "$D/run" "$D/log" "$D/pids"
  cat >"$ETC/swift.conf" <<EOF
# generated by spec/support/swift.sh
[swift-hash]
swift_hash_path_prefix = objstore
swift_hash_path_suffix = objstore-test

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
# S3 allows 2 KiB of user metadata and long SigV4 headers
max_header_size = 16384
max_meta_value_length = 2048
EOF
  local common="bind_ip = 127.0.0.1
workers = 0
user = root
swift_dir = $ETC
devices = $D/devices
mount_check = false
disable_fallocate = true
log_level = INFO"
  local kind port
  for kind in object container account; do
    case $kind in object) port=$OBJ_PORT ;; container) port=$CONT_PORT ;; account) port=$ACCT_PORT ;; esac
    cat >"$ETC/$kind-server.conf" <<EOF
# generated by spec/support/swift.sh
[DEFAULT]
$common
bind_port = $port
log_name = $kind-server

[pipeline:main]
pipeline = healthcheck $kind-server

[app:$kind-server]
use = egg:swift#$kind

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done
  cat >"$ETC/proxy-server.conf" <<EOF
# generated by spec/support/swift.sh
[DEFAULT]
$common
bind_port = $PORT
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:s3api]
use = egg:swift#s3api
location = $REGION
storage_domain = $DNS_NAME
s3_acl = false
dns_compliant_bucket_names = true
max_upload_part_num = 10000
min_segment_size = 5242880

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $SK .admin
user_${OTHER_AK/:/_} = $OTHER_SK

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MC_PORT

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000
max_manifest_size = 16777216

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:ratelimit]
use = egg:swift#ratelimit
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:dlo]
use = egg:swift#dlo
[filter:symlink]
use = egg:swift#symlink
EOF
}

# rings: rebuilt only when missing or when the backend ports changed
build_rings() {
  local want="$OBJ_PORT $CONT_PORT $ACCT_PORT"
  if [ -f "$ETC/ring-ports" ] && [ "$(cat "$ETC/ring-ports")" = "$want" ] &&
     [ -f "$ETC/object.ring.gz" ] && [ -f "$ETC/container.ring.gz" ] && [ -f "$ETC/account.ring.gz" ]; then
    return 0
  fi
  rm -f "$ETC"/*.builder "$ETC"/*.ring.gz "$ETC/ring-ports"
  rm -rf "$ETC/backups"
  # what `swift-ring-builder X.builder create 8 1 1; add r1z1-127.0.0.1:PORT/d1 100;
  # rebalance` does, in one python process (~0.5 s instead of ~5 s)
  timeout 60 "$PY" - "$ETC" "$OBJ_PORT" "$CONT_PORT" "$ACCT_PORT" >>"$D/log/rings.log" 2>&1 <<'EOF' ||
import sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(zip(('object', 'container', 'account'), map(int, sys.argv[2:5])))
for kind, port in ports.items():
    b = RingBuilder(8, 1, 1)
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port, 'device': 'd1',
               'weight': 100, 'replication_ip': '127.0.0.1', 'replication_port': port, 'meta': ''})
    b.rebalance()
    b.save('%s/%s.builder' % (etc, kind))
    b.get_ring().save('%s/%s.ring.gz' % (etc, kind))
EOF
    { log "building the rings failed"; return 1; }
  echo "$want" >"$ETC/ring-ports"
}

# ---------------------------------------------------------------- start
cmd_start() {
  local t0 deadline n p
  t0=$(now)
  if healthy; then log "already running and healthy ($ENDPOINT)"; return 0; fi
  deadline=$(( t0 + TIMEOUT ))
  stop_all
  if [ -e "$D" ] && [ ! -e "$MARK" ] && [ -n "$(ls -A "$D" 2>/dev/null)" ]; then
    die "$D exists, is not empty and was not made by swift.sh: refusing to use it"
  fi
  mkdir -p "$D"; touch "$MARK"
  for p in "$PORT" "$OBJ_PORT" "$CONT_PORT" "$ACCT_PORT" "$MC_PORT"; do
    port_busy "$p" && die "port $p on 127.0.0.1 is already in use by another process"
  done
  write_configs
  build_rings || die "could not build the rings"
  spawn memcached memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64 -c 1024 -u root -P "$D/run/memcached.pid"
  spawn account swift-account-server "$ETC/account-server.conf" -v
  spawn container swift-container-server "$ETC/container-server.conf" -v
  spawn object swift-object-server "$ETC/object-server.conf" -v
  spawn proxy swift-proxy-server "$ETC/proxy-server.conf" -v
  # cheap probes first (curl, no python start per try), then the signed request
  for p in "$ACCT_PORT" "$CONT_PORT" "$OBJ_PORT" "$PORT"; do
    while ! curl -sf --noproxy '*' --max-time 2 -o /dev/null "http://127.0.0.1:$p/healthcheck"; do
      for n in "${NAMES[@]}"; do
        alive "$n" || { stop_all; die "$n exited during start"; }
      done
      [ "$(now)" -lt "$deadline" ] || { stop_all; die "swift did not become healthy within ${TIMEOUT} s (port $p)"; }
      sleep 0.2
    done
  done
  while ! signed_get "$AK" "$SK" >/dev/null 2>&1; do
    for n in "${NAMES[@]}"; do
      alive "$n" || { stop_all; die "$n exited during start"; }
    done
    if [ "$(now)" -ge "$deadline" ]; then
      stop_all; die "swift did not become healthy within ${TIMEOUT} s"
    fi
    sleep 0.3
  done
  log "healthy after $(( $(now) - t0 )) s ($ENDPOINT)"
}

cmd_env() {
  cat <<EOF
export OBJSTORE_SWIFT_ENDPOINT=$ENDPOINT
export OBJSTORE_SWIFT_ACCESS_KEY=$AK
export OBJSTORE_SWIFT_SECRET_KEY=$SK
export OBJSTORE_SWIFT_REGION=$REGION
export OBJSTORE_SWIFT_OTHER_ACCESS_KEY=$OTHER_AK
export OBJSTORE_SWIFT_OTHER_SECRET_KEY=$OTHER_SK
export OBJSTORE_SWIFT_VHOST_DOMAIN=$DNS_NAME
EOF
}

with_lock() {
  mkdir -p "$(dirname "$D")"
  exec 9>"$D.lock"
  flock -w 120 9 || die "could not lock $D.lock within 120 s"
  "$@"
}

case "${1:-}" in
  start) with_lock cmd_start ;;
  stop) with_lock stop_all; log "stopped" ;;
  restart) with_lock stop_all; with_lock cmd_start ;;
  status)
    if healthy; then echo "swift: healthy ($ENDPOINT)"; exit 0; fi
    echo "swift: not healthy"; exit 1 ;;
  env) cmd_env ;;
  wipe)
    with_lock stop_all
    if [ -e "$MARK" ]; then rm -rf "$D"; log "wiped $D"; else log "nothing to wipe at $D"; fi ;;
  logs) show_logs ;;
  *) echo "usage: $0 start|stop|status|env|restart|wipe|logs" >&2; exit 2 ;;
esac
