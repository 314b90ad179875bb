#!/usr/bin/env bash
# make bench-front: the S3 front (examples/front, 2 workers) against the
# local radosgw, next to the same nginx doing a plain proxy_pass to rgw.
#  1. requests/s of small GETs (SMALL_BYTES, default 1024) with wrk
#     (DURATION seconds each, default 5, 2 threads, 16 connections): a
#     presigned URL through the front (SigV4 verified, tenant mapped,
#     counted, objstore's client to rgw) next to an rgw presigned URL through
#     a bare `proxy_pass` server block added to the same nginx; the ratio.
#  2. a SIZE_MIB (default 1024) PUT and GET with curl --aws-sigv4 through
#     the front next to straight to rgw: MiB/s and the ratios, and the
#     largest RSS of a front worker seen during the transfers (sampled
#     every 0.2 s) next to its RSS before them.
# Each figure is the median of RUNS runs (default 3). The machine's cores are
# shared with rgw, wrk and curl: figures are indicative, ratios matter.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
SIZE_MIB=${SIZE_MIB:-1024}
SMALL_BYTES=${SMALL_BYTES:-1024}
PORT=${BENCH_FRONT_PORT:-18788}
PROXY_PORT=${BENCH_FRONT_PROXY_PORT:-$((PORT + 1))}
DIR=${BENCH_FRONT_DIR:-/tmp/objstore-bench-front}
BUCKET=${BENCH_BUCKET:-bench-front}
BASE=http://127.0.0.1:$PORT
AK=AKBENCHFRONT SK=bench-front-secret-key
command -v wrk >/dev/null || { echo "wrk is not installed (spec/support/install-deps.sh peers)" >&2; exit 1; }
eval "$(bash spec/support/rgw.sh env)"
RGW=${OBJSTORE_TEST_ENDPOINT%/}
RGW_HOSTPORT=${RGW#http://}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/lua5.4/?.so;;'
work=$(mktemp -d /tmp/objstore-bench-front.XXXXXX)
sampler=
stop() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  FRONT_PORT=$PORT FRONT_DIR=$DIR bash examples/front/run.sh stop >/dev/null 2>&1 || true
  lua5.4 bench/admin.lua cleanup "$BUCKET" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop EXIT

cat >"$work/tenants.json" <<JSON
{ "tenants": { "bench": {
  "keys": [ { "access_key": "$AK", "secret_key": "$SK" } ],
  "buckets": { "data": { "store_bucket": "$BUCKET", "prefix": "front/", "allow": ["read", "write", "list", "delete"] } } } } }
JSON
FRONT_PORT=$PORT FRONT_DIR=$DIR FRONT_TENANTS=$work/tenants.json timeout 120 \
  bash examples/front/run.sh start >/dev/null
# The plain proxy, in the same nginx: a server block added to the generated
# configuration, then a reload. The Host rgw signed is passed unchanged.
conf=$DIR/nginx.conf
sed -i '$d' "$conf"
cat >>"$conf" <<NGX
  server {
    listen 127.0.0.1:$PROXY_PORT;
    location / {
      proxy_pass $RGW;
      proxy_set_header Host $RGW_HOSTPORT;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGX
master=$(cat "$DIR/nginx.pid")
kill -HUP "$master"
for _ in $(seq 50); do
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PROXY_PORT/" && break
  sleep 0.2
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100 * a / b}'; }
front_py() {
  env AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK \
    FRONT_URL="$BASE" python3 spec/support/front_clients.py "$@"
}

# 1. small GETs
head -c "$SMALL_BYTES" /dev/urandom >"$work/small.bin"
front_py put "$work/small.bin" data small.bin >/dev/null
front_url=$(front_py presign data small.bin | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
rgw_url=$(lua5.4 bench/admin.lua presign "$BUCKET" GET front/small.bin)
proxy_url=http://127.0.0.1:$PROXY_PORT${rgw_url#"$RGW"}
for u in "$front_url" "$proxy_url"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$u")
  [ "$code" = 200 ] || { echo "GET $u answered $code" >&2; exit 1; }
done
rps() { wrk -t2 -c16 -d"${DURATION}s" "$1" | awk '/^Non-2xx/ {print "errors: " $0 > "/dev/stderr"} /^Requests\/sec/ {print $2}'; }
rps "$front_url" >/dev/null # warm-up
f_runs=() p_runs=()
for _ in $(seq "$RUNS"); do
  f_runs+=("$(rps "$front_url")")
  p_runs+=("$(rps "$proxy_url")")
done
f=$(printf '%s\n' "${f_runs[@]}" | median)
p=$(printf '%s\n' "${p_runs[@]}" | median)
echo "small GETs ($SMALL_BYTES bytes), 2 workers, requests/s, median of $RUNS x ${DURATION}s (wrk -t2 -c16):"
printf '  plain proxy_pass to rgw  %10.0f\n  through the front        %10.0f   ratio %s\n' "$p" "$f" "$(ratio "$f" "$p")"

# 2. large PUT and GET, with the front workers' RSS sampled meanwhile
big=$work/big.bin
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$big"
workers=$(pgrep -P "$master" | tr '\n' ' ')
rss() { for w in $workers; do awk '/^VmRSS/ {print $2}' "/proc/$w/status" 2>/dev/null; done | sort -n | tail -1; }
rss_before=$(rss)
(while :; do rss; sleep 0.2; done >"$work/rss") &
sampler=$!
speed() { # what (up|down) url user:secret -> MiB/s
  local what=$1 url=$2 user=$3 out
  if [ "$what" = up ]; then
    out=$(curl -sf -o /dev/null --max-time 900 -w '%{speed_upload}' --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$user" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T "$big" "$url")
  else
    out=$(curl -sf -o "$work/back.bin" --max-time 900 -w '%{speed_download}' --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$user" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$url")
  fi
  awk -v s="$out" 'BEGIN {print s / 1048576}'
}
fu=() fd=() du=() dd=()
for _ in $(seq "$RUNS"); do
  fu+=("$(speed up "$BASE/data/big.bin" "$AK:$SK")")
  fd+=("$(speed down "$BASE/data/big.bin" "$AK:$SK")")
  cmp -s "$big" "$work/back.bin" || { echo "the download through the front differs" >&2; exit 1; }
  du+=("$(speed up "$RGW/$BUCKET/direct/big.bin" "$OBJSTORE_TEST_ACCESS_KEY:$OBJSTORE_TEST_SECRET_KEY")")
  dd+=("$(speed down "$RGW/$BUCKET/direct/big.bin" "$OBJSTORE_TEST_ACCESS_KEY:$OBJSTORE_TEST_SECRET_KEY")")
done
kill "$sampler" 2>/dev/null || true
sampler=
rss_max=$(sort -n "$work/rss" | tail -1)
m() { printf '%s\n' "$@" | median; }
echo "$SIZE_MIB MiB with curl --aws-sigv4, MiB/s, median of $RUNS:"
printf '  PUT direct to rgw   %8.1f\n  PUT through front   %8.1f   ratio %s\n' "$(m "${du[@]}")" "$(m "${fu[@]}")" \
  "$(ratio "$(m "${fu[@]}")" "$(m "${du[@]}")")"
printf '  GET direct to rgw   %8.1f\n  GET through front   %8.1f   ratio %s\n' "$(m "${dd[@]}")" "$(m "${fd[@]}")" \
  "$(ratio "$(m "${fd[@]}")" "$(m "${dd[@]}")")"
printf '  front worker RSS: %s KiB before, at most %s KiB during the transfers\n' "$rss_before" "$rss_max"
echo "(the machine is shared: rgw, nginx, wrk and curl on the same cores)"
