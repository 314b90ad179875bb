#!/usr/bin/env bash
# Single-node Ceph radosgw (1 mon, 1 bluestore OSD on a sparse file, rgw/beast)
# on 127.0.0.1 for objstore's integration tests. No mgr, no auth (cephx off).
#
# Usage: spec/support/rgw.sh start|stop|status|env|restart|wipe|logs
#   start    idempotent: returns at once when healthy; restarts dead daemons on an
#            existing data dir, falls back to wipe + fresh cluster; fails loudly
#            (last log lines) when not healthy within RGW_START_TIMEOUT seconds.
#   stop     ends exactly the recorded daemons (TERM, then KILL), bounded.
#   status   exit 0 iff all three daemons run and a SigV4-signed request works.
#   env      prints `export` lines for the test suite.
#   wipe     stop + delete the data dir.  logs: tail of every log.
#
# Environment: OBJSTORE_TEST_DIR (default /tmp/objstore-rgw), RGW_PORT (7480), RGW_STS_PORT (7481, the STS endpoint),
#   RGW_MON_PORT (msgr2, 3300), RGW_MON_V1_PORT (6789), RGW_OSD_PORTS (6800-6899),
#   RGW_BLOCK_SIZE (sparse bluestore file, 40G: rgw frees deleted data only after its GC
#   wait, and the transfer benchmark keeps several 1 GiB objects), RGW_START_TIMEOUT (120).
set -euo pipefail

D=${OBJSTORE_TEST_DIR:-/tmp/objstore-rgw}
D=${D%/}
PORT=${RGW_PORT:-7480}
MON_PORT=${RGW_MON_PORT:-3300}
MON_V1_PORT=${RGW_MON_V1_PORT:-6789}
OSD_PORTS=${RGW_OSD_PORTS:-6800-6899}
BLOCK_SIZE=${RGW_BLOCK_SIZE:-40G}
TIMEOUT=${RGW_START_TIMEOUT:-120}
DNS_NAME=s3.localhost
REGION=us-east-1            # zonegroup api_name is set to this (see configure_zonegroup)
AK=objstore-test-ak
SK='objstore-test-sk/+=secret'
OTHER_AK=objstore-other-ak
OTHER_SK=objstore-other-sk
ENDPOINT="http://127.0.0.1:$PORT"
# A second radosgw process on the same cluster serves STS: with
# rgw_s3_auth_use_sts on, rgw answers every failed authentication with a bare
# AccessDenied, which would hide the SignatureDoesNotMatch and
# InvalidAccessKeyId answers the main endpoint's specs rely on.
STS_PORT=${RGW_STS_PORT:-7481}
STS_ENDPOINT="http://127.0.0.1:$STS_PORT"
CONF="$D/ceph.conf"
MARK="$D/.objstore-rgw"     # our data dir (safe to wipe)
READY="$D/.initialized"     # cluster, zonegroup and users set up
PY=/usr/bin/python3
SUPPORT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CEPH_CONF="$CONF"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true

log() { printf 'rgw.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; show_logs >&2 || true; exit 1; }
now() { date +%s; }

show_logs() {
  local f
  for f in "$D"/log/*.out "$D"/log/*.log; do
    [ -f "$f" ] || continue
    case $f in */ceph.log|*/ceph-client.admin.log|*/ceph-mon..log) continue ;; esac
    echo "----- last lines of $f"
    tail -n 15 "$f"
  done
}

# ---------------------------------------------------------------- processes
pidfile() { echo "$D/pids/$1.pid"; }

# alive NAME: the recorded process runs and is ours (its command line names our conf).
alive() {
  local f pid
  f=$(pidfile "$1"); [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONF"
}

# spawn NAME CMD...: own session, stdin closed, output to log/NAME.out, PID recorded.
spawn() {
  local name=$1; shift
  mkdir -p "$D/pids" "$D/log"
  setsid "$@" </dev/null >>"$D/log/$name.out" 2>&1 9>&- &
  echo $! >"$(pidfile "$name")"
}

stop_daemons() {
  local names=(rgw rgw-sts osd mon) n pid pids=() deadline
  for n in "${names[@]}"; do
    if alive "$n"; then pid=$(cat "$(pidfile "$n")"); pids+=("$pid"); fi
  done
  [ ${#pids[@]} -eq 0 ] && { rm -f "$D"/pids/*.pid 2>/dev/null; return 0; }
  # one at a time: rgw (its shutdown needs the osd), the osd (tells the mon), the mon
  for n in "${names[@]}"; do
    alive "$n" || continue
    kill -TERM "$(cat "$(pidfile "$n")")" 2>/dev/null || true
    deadline=$(( $(now) + 6 ))
    while alive "$n" && [ "$(now)" -lt "$deadline" ]; do sleep 0.1; done
  done
  for n in "${names[@]}"; do
    if alive "$n"; then
      log "$n did not stop on SIGTERM, sending SIGKILL"
      kill -KILL "$(cat "$(pidfile "$n")")" 2>/dev/null || true
    fi
  done
  deadline=$(( $(now) + 5 ))
  while { alive rgw || alive rgw-sts || alive osd || alive mon; } && [ "$(now)" -lt "$deadline" ]; do sleep 0.1; done
  for n in "${names[@]}"; do alive "$n" && die "could not stop $n"; done
  rm -f "$D"/pids/*.pid
}

# ---------------------------------------------------------------- health
# signed_get AK SK: SigV4-signed ListBuckets (GET /) with region $REGION; exit 0 on 200.
signed_get() {
  "$PY" "$SUPPORT/signed_get.py" "${3:-$ENDPOINT}" "$1" "$2" "$REGION"
}

healthy() {
  alive mon && alive osd && alive rgw && alive rgw-sts && [ -f "$READY" ] &&
    signed_get "$AK" "$SK" 2>/dev/null && signed_get "$AK" "$SK" "$STS_ENDPOINT" 2>/dev/null
}

# port_busy PORT: something accepts connections on 127.0.0.1:PORT (no ss/netstat needed)
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# wait_until DEADLINE WHAT CMD...: poll CMD until it succeeds; die at the deadline.
wait_until() {
  local deadline=$1 what=$2; shift 2
  while ! "$@" >/dev/null 2>&1; do
    [ "$(now)" -lt "$deadline" ] || { log "timed out waiting for $what"; return 1; }
    check_daemons_alive || return 1
    sleep 0.5
  done
}

# the daemons started so far must still run (fail fast instead of waiting 120 s)
STARTED=()
check_daemons_alive() {
  local n
  for n in "${STARTED[@]}"; do alive "$n" || { log "$n exited"; return 1; }; done
}

ceph_cli() { timeout 20 ceph --connect-timeout 10 "$@"; }

# bounded CMD...: run CMD with a timeout that ends at the start deadline (at most 60 s)
DEADLINE=$(( $(date +%s) + TIMEOUT ))
bounded() {
  local rem=$(( DEADLINE - $(now) ))
  [ "$rem" -gt 60 ] && rem=60
  [ "$rem" -ge 1 ] || rem=1
  timeout "$rem" "$@"
}

mon_up() { ceph_cli mon stat; }
# the running osd process itself must be active (after a kill -9 the mon still
# reports the dead instance as up until the new one boots)
osd_up() {
  timeout 10 ceph --admin-daemon "$D/run/ceph-osd.0.asok" status 2>/dev/null |
    "$PY" -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("state")=="active" else 1)' || return 1
  ceph_cli osd stat -f json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d.get("num_up_osds")==1 and d.get("num_in_osds")==1 else 1)'
}
rgw_up() { curl -s -o /dev/null --noproxy '*' --max-time 3 "$ENDPOINT/"; }

# ---------------------------------------------------------------- setup
# settings both radosgw processes share
rgw_common_conf() {
  cat <<EOF
rgw_dns_name = $DNS_NAME
rgw_enable_usage_log = false
rgw_enable_ops_log = false
rgw_crypt_require_ssl = false
# SSE-KMS with rgw's built-in testing backend (key ids map to fixed keys here)
rgw_crypt_s3_kms_backend = testing
rgw_crypt_s3_kms_encryption_keys = testkey-1=YmluCmJvb3N0CmJvb3N0LWJ1aWxkCmNlcGguY29uZgo= testkey-2=aWIKTWFrZWZpbGUKbWFuCm91dApzcmMKVGVzdGluZwo=
# reclaim space of deleted/overwritten objects within a minute (default 2 h)
rgw_gc_obj_min_wait = 60
rgw_gc_processor_period = 60
rgw_gc_processor_max_time = 60
EOF
}

write_conf() {
  local fsid=$1
  cat >"$CONF" <<EOF
# generated by spec/support/rgw.sh
[global]
fsid = $fsid
mon_initial_members = a
mon_host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_port_min = ${OSD_PORTS%-*}
ms_bind_port_max = ${OSD_PORTS#*-}
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_mon_service_mode = crc
ms_mon_cluster_mode = crc
ms_client_mode = crc
ms_service_mode = crc
ms_cluster_mode = crc
keyring = $D/keyring
run_dir = $D/run
admin_socket = $D/run/\$cluster-\$name.asok
pid_file = $D/run/\$cluster-\$name.pid
log_file = $D/log/\$cluster-\$name.log
mon_cluster_log_file = $D/log/\$cluster.log
log_to_stderr = false
err_to_stderr = true
crash_dir = $D/crash
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
# a one-mon test cluster: commit map changes at once (pool creation 1 s -> 0.1 s each)
paxos_propose_interval = 0.1
paxos_min_wait = 0.01

[mon]
mon_data = $D/mon/\$cluster-\$id
mon_warn_on_insecure_global_id_reclaim_allowed = false

[osd]
osd_data = $D/osd/\$cluster-\$id
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = $(numfmt --from=iec "$BLOCK_SIZE")
bluestore_fsck_on_mount = false
bluestore_fsck_on_mkfs = false
osd_memory_target = 1073741824
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 2

[client.rgw.a]
# tcp_nodelay: without it beast sends a small answer's body only once the
# head is acknowledged, and a client on a reused connection delays that
# ACK 40 ms (Linux delayed ACK): every small GET of every client (boto3,
# objstore, the front) took 45 ms on a kept-alive connection.
rgw_frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw_data = $D/rgw
$(rgw_common_conf)

[client.rgw.sts]
rgw_frontends = beast endpoint=127.0.0.1:$STS_PORT tcp_nodelay=1
rgw_data = $D/rgw-sts
$(rgw_common_conf)
# STS (AssumeRole, GetSessionToken); the key must be exactly 16 characters
rgw_s3_auth_use_sts = true
rgw_sts_key = objstoreteststs1
EOF
}

start_mon() {
  alive mon || spawn mon ceph-mon -f -c "$CONF" -i a
  STARTED+=(mon)
}
start_osd() {
  alive osd || spawn osd ceph-osd -f -c "$CONF" -i 0
  STARTED+=(osd)
}
start_rgw() {
  alive rgw || spawn rgw radosgw -f -c "$CONF" -n client.rgw.a
  alive rgw-sts || spawn rgw-sts radosgw -f -c "$CONF" -n client.rgw.sts
  STARTED+=(rgw rgw-sts)
}

check_ports() {
  local p
  for p in "$PORT" "$STS_PORT" "$MON_PORT" "$MON_V1_PORT"; do
    port_busy "$p" && { log "port $p on 127.0.0.1 is already in use by another process"; return 1; }
  done
  return 0
}

# zonegroup api_name = us-east-1: LocationConstraint/GetBucketLocation then agree with
# the region the tests sign with (Pacific's default api_name is "default").
configure_zonegroup() {
  local cur
  # any full radosgw-admin init creates the default realm-less zone and zonegroup
  bounded radosgw-admin user list >/dev/null || return 1
  cur=$(bounded radosgw-admin zonegroup get --rgw-zonegroup=default 2>/dev/null |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("api_name",""))') || return 1
  [ "$cur" = "$REGION" ] && return 0
  # no realm: no period to commit, rgw reads the zonegroup object when it starts
  bounded radosgw-admin zonegroup modify --rgw-zonegroup=default --api-name="$REGION" >/dev/null || return 1
  return 2   # changed (a running rgw would need a restart to see it)
}

create_user() {
  local uid=$1 name=$2 ak=$3 sk=$4
  if ! bounded radosgw-admin user info --uid="$uid" >/dev/null 2>&1; then
    bounded radosgw-admin user create --uid="$uid" --display-name="$name" \
      --access-key="$ak" --secret-key="$sk" --max-buckets=0 >/dev/null || return 1
  fi
}

# STS for the credential specs: the test user may manage and assume roles
# (caps roles=*), and one role (STS_ROLE) trusts it with a policy allowing
# every S3 action. Idempotent (caps add and role-policy put overwrite; the
# role is created once), so it also runs on a cluster made before STS was.
STS_ROLE=${OBJSTORE_TEST_STS_ROLE:-objstore-sts-test}
setup_sts() {
  local trust policy
  bounded radosgw-admin caps add --uid=objstore-test --caps="roles=*;user-policy=*" >/dev/null || return 1
  trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/objstore-test"]},"Action":["sts:AssumeRole"]}]}'
  policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":"arn:aws:s3:::*"}]}'
  if ! bounded radosgw-admin role get --role-name="$STS_ROLE" >/dev/null 2>&1; then
    bounded radosgw-admin role create --role-name="$STS_ROLE" --path=/ \
      --assume-role-policy-doc="$trust" >/dev/null || return 1
  fi
  bounded radosgw-admin role-policy put --role-name="$STS_ROLE" --policy-name=objstore-s3-all \
    --policy-doc="$policy" >/dev/null || return 1
  # GetSessionToken needs a user policy allowing it; only the IAM API of the
  # running rgw sets one (radosgw-admin 16.2 has no user-policy command), with
  # awscli, which the test packages bring and make demo's do not: without it
  # the STS specs, which run sts-setup themselves, are the ones that need it.
  if [ ! -x /usr/bin/aws ]; then
    log "no /usr/bin/aws: GetSessionToken user policy not set (spec/support/install-deps.sh test)"
    return 0
  fi
  AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    bounded /usr/bin/aws --region "$REGION" --endpoint-url "$ENDPOINT" iam put-user-policy --user-name objstore-test \
    --policy-name objstore-sts --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:GetSessionToken"],"Resource":"*"}]}' \
    >/dev/null || return 1
}

fresh_init() {
  local deadline=$1 fsid osd_uuid rc
  [ -e "$D" ] && [ ! -e "$MARK" ] && [ -n "$(ls -A "$D" 2>/dev/null)" ] &&
    die "$D exists, is not empty and was not made by rgw.sh: refusing to wipe it"
  rm -rf "$D"
  mkdir -p "$D"/{mon,osd/ceph-0,run,log,pids,rgw,crash}
  touch "$MARK"
  fsid=$(uuidgen)
  write_conf "$fsid"
  check_ports || return 1
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]" \
    "$D/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" >>"$D/log/mkfs.out" 2>&1 ||
    { log "ceph-mon --mkfs failed"; return 1; }
  start_mon
  wait_until "$deadline" "mon" mon_up || return 1
  osd_uuid=$(uuidgen)
  ceph_cli osd new "$osd_uuid" >>"$D/log/mkfs.out" 2>&1 || { log "ceph osd new failed"; return 1; }
  bounded ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$D/log/mkfs.out" 2>&1 ||
    { log "ceph-osd --mkfs failed"; return 1; }
  start_osd
  wait_until "$deadline" "osd up" osd_up || return 1
  # radosgw-admin creates the default zone/zonegroup and the rgw pools itself, so
  # the api_name and the users are in place before rgw first starts (no restart).
  rc=0; configure_zonegroup || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 2 ] || { log "radosgw-admin zonegroup failed"; return 1; }
  create_user objstore-test "objstore test" "$AK" "$SK" || { log "user create failed"; return 1; }
  create_user objstore-other "objstore other" "$OTHER_AK" "$OTHER_SK" || { log "user create failed"; return 1; }
  start_rgw
  wait_until "$deadline" "signed request" signed_get "$AK" "$SK" || return 1
  wait_until "$deadline" "signed request (other user)" signed_get "$OTHER_AK" "$OTHER_SK" || return 1
  wait_until "$deadline" "signed request (STS endpoint)" signed_get "$AK" "$SK" "$STS_ENDPOINT" || return 1
  setup_sts || { log "STS role setup failed"; return 1; }
  touch "$READY"
}

restart_existing() {
  local deadline=$1 fsid
  # regenerate ceph.conf (same fsid) so settings changed in this script apply
  fsid=$(awk -F' = ' '/^fsid = /{print $2; exit}' "$CONF")
  [ -n "$fsid" ] || { log "no fsid in $CONF"; return 1; }
  write_conf "$fsid"
  mkdir -p "$D"/{run,log,pids,rgw,crash}
  start_mon
  wait_until "$deadline" "mon" mon_up || return 1
  start_osd
  wait_until "$deadline" "osd up" osd_up || return 1
  start_rgw
  wait_until "$deadline" "signed request" signed_get "$AK" "$SK" || return 1
  wait_until "$deadline" "signed request (STS endpoint)" signed_get "$AK" "$SK" "$STS_ENDPOINT" || return 1
}

cmd_start() {
  local t0 deadline
  t0=$(now)
  if healthy; then log "already running and healthy ($ENDPOINT)"; return 0; fi
  deadline=$(( t0 + TIMEOUT )); DEADLINE=$deadline
  stop_daemons                       # leftovers of a half-dead cluster
  # a foreign process on our ports: fail (never wipe the data dir for that)
  check_ports || die "cannot start radosgw: port in use (set RGW_PORT / RGW_MON_PORT / RGW_MON_V1_PORT)"
  if [ -f "$READY" ] && [ -f "$CONF" ]; then
    log "restarting daemons on existing data dir $D"
    if restart_existing "$deadline"; then
      log "healthy after $(( $(now) - t0 )) s ($ENDPOINT)"; return 0
    fi
    log "restart failed; last log lines:"; show_logs >&2
    stop_daemons
    log "wiping $D and creating a fresh cluster"
    deadline=$(( $(now) + TIMEOUT )); DEADLINE=$deadline
  fi
  log "creating a fresh cluster in $D"
  STARTED=()
  if fresh_init "$deadline"; then
    log "healthy after $(( $(now) - t0 )) s ($ENDPOINT)"; return 0
  fi
  stop_daemons || true
  die "radosgw did not become healthy (limit ${TIMEOUT} s per attempt; messages above)"
}

cmd_env() {
  cat <<EOF
export OBJSTORE_TEST_ENDPOINT=$ENDPOINT
export OBJSTORE_TEST_ACCESS_KEY=$AK
export OBJSTORE_TEST_SECRET_KEY='$SK'
export OBJSTORE_TEST_REGION=$REGION
export OBJSTORE_TEST_STS_ENDPOINT=$STS_ENDPOINT
export OBJSTORE_TEST_STS_ROLE_ARN=arn:aws:iam:::role/$STS_ROLE
export OBJSTORE_TEST_OTHER_ACCESS_KEY=$OTHER_AK
export OBJSTORE_TEST_OTHER_SECRET_KEY=$OTHER_SK
export OBJSTORE_TEST_VHOST_DOMAIN=$DNS_NAME
EOF
}

with_lock() {
  mkdir -p "$(dirname "$D")"
  exec 9>"$D.lock"
  flock -w 300 9 || die "could not lock $D.lock within 300 s"
  "$@"
}

case "${1:-}" in
  start) with_lock cmd_start ;;
  stop) with_lock stop_daemons; log "stopped" ;;
  restart) with_lock stop_daemons; with_lock cmd_start ;;
  status)
    if healthy; then echo "rgw: healthy ($ENDPOINT)"; exit 0; fi
    echo "rgw: not healthy"; exit 1 ;;
  env) cmd_env ;;
  wipe)
    with_lock stop_daemons
    if [ -e "$MARK" ]; then rm -rf "$D"; log "wiped $D"; else log "nothing to wipe at $D"; fi ;;
  logs) show_logs ;;
  # the STS role, caps and user policy on a running (or older) cluster; idempotent
  sts-setup) DEADLINE=$(( $(now) + 120 )); setup_sts || die "STS role setup failed" ;;
  *) echo "usage: $0 start|stop|status|env|restart|wipe|logs|sts-setup" >&2; exit 2 ;;
esac
