#!/usr/bin/env bash
# make bench-sync: a directory of SMALL_N files of SMALL_KIB KiB plus LARGE_N
# files of LARGE_MIB MiB (default 5,000 x 4 KiB + 20 x 20 MiB) synced
# local -> rgw, then a no-op re-run, by objstore (bin/objstore sync),
# `rclone sync --transfers 16` and `aws s3 sync`, in one run against the
# same rgw. Every request goes through the request-counting proxy
# (spec/support/faultproxy.sh with no faults: its /__faults/stats counts
# requests by method) on 127.0.0.1:$BENCH_PROXY_PORT. Prints wall time and
# requests (with the method breakdown) of each run, medians of RUNS runs
# (default 1), and objstore's ratios to the faster peer.
# Small knobs first: SMALL_N=200 LARGE_N=2 LARGE_MIB=6 make bench-sync.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1}
SMALL_N=${SMALL_N:-5000}
SMALL_KIB=${SMALL_KIB:-4}
LARGE_N=${LARGE_N:-20}
LARGE_MIB=${LARGE_MIB:-20}
LUA=${LUA:-lua5.4}
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH="./build/$LUA/?.so;;"
bash spec/support/rgw.sh start >&2
eval "$(bash spec/support/rgw.sh env)"
unset AWS_CA_BUNDLE # rclone refuses to start with it set, even over http

export FAULTPROXY_PORT=${BENCH_PROXY_PORT:-18700} FAULTPROXY_DIR=${BENCH_PROXY_DIR:-/tmp/objstore-bench-proxy}
export FAULTPROXY_UPSTREAM=$OBJSTORE_TEST_ENDPOINT
bash spec/support/faultproxy.sh start >&2
eval "$(bash spec/support/faultproxy.sh env)"
proxy=$FAULTPROXY_ENDPOINT

work=$(mktemp -d /tmp/objstore-bench-sync.XXXXXX)
cleanup() {
  bash spec/support/faultproxy.sh stop >&2 || true
  rm -rf "$work"
}
trap cleanup EXIT
data=$work/data
mkdir -p "$data"
echo "making $SMALL_N x $SMALL_KIB KiB + $LARGE_N x $LARGE_MIB MiB in $data" >&2
head -c $((SMALL_KIB * 1024 * SMALL_N)) /dev/urandom | split -a 4 -d -b $((SMALL_KIB * 1024)) - "$data/"
mkdir -p "$data/large"
for i in $(seq 1 "$LARGE_N"); do head -c $((LARGE_MIB * 1024 * 1024)) /dev/urandom >"$data/large/f$i.bin"; done
# spread the small files over 50 directories, as a real tree would be
( cd "$data" && n=0 && for f in [0-9]*; do d=d$((n % 50)); mkdir -p "$d"; mv "$f" "$d/"; n=$((n + 1)); done )

export AWS_ACCESS_KEY_ID=$OBJSTORE_TEST_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$OBJSTORE_TEST_SECRET_KEY
export AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export RCLONE_CONFIG_RGW_TYPE=s3 RCLONE_CONFIG_RGW_PROVIDER=Ceph RCLONE_CONFIG_RGW_ENDPOINT=$proxy
export RCLONE_CONFIG_RGW_ACCESS_KEY_ID=$OBJSTORE_TEST_ACCESS_KEY
export RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY=$OBJSTORE_TEST_SECRET_KEY RCLONE_CONFIG_RGW_FORCE_PATH_STYLE=true

stats_reset() { curl -s -X DELETE "$proxy/__faults/stats" >/dev/null; }
# requests "<total> <method breakdown>"
stats_read() {
  curl -s "$proxy/__faults/stats" | /usr/bin/python3 -c 'import json,sys
s=json.load(sys.stdin); m=s["methods"]
print(s["requests"], ",".join("%s=%d" % (k, m[k]) for k in sorted(m)) or "-")'
}

# run_tool NAME BUCKET: one first run and one no-op run; appends to $work/NAME.{first,noop}
run_tool() {
  local name=$1 bucket=$2 t0 t1 state=$work/objstore-state
  rm -f "$state"
  local cmd
  case $name in
    objstore) cmd=("$LUA" bin/objstore --endpoint "$proxy" -q sync "$data" "s3://$bucket/" --state-file "$state") ;;
    rclone) cmd=(rclone sync "$data" "rgw:$bucket" --transfers 16 -q) ;;
    aws) cmd=(/usr/bin/aws --endpoint-url "$proxy" s3 sync "$data" "s3://$bucket/" --only-show-errors) ;;
  esac
  for pass in first noop; do
    stats_reset
    t0=$(date +%s.%N)
    "${cmd[@]}" >"$work/out" 2>&1 || { echo "$name $pass failed:" >&2; tail -5 "$work/out" >&2; return 1; }
    t1=$(date +%s.%N)
    echo "$(echo "$t1 - $t0" | bc) $(stats_read)" >>"$work/$name.$pass"
  done
}

for r in $(seq 1 "$RUNS"); do
  for tool in rclone aws objstore; do
    bucket=h10-bench-$tool-$(date +%s)-$r
    "$LUA" bench/admin.lua create "$bucket"
    run_tool "$tool" "$bucket"
    "$LUA" bench/admin.lua cleanup "$bucket"
  done
done

# median FILE -> the line with the median wall time
median() { sort -n "$1" | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }

printf '\n%d x %d KiB + %d x %d MiB, local -> rgw, medians of %d run(s); machine shared with other work\n' \
  "$SMALL_N" "$SMALL_KIB" "$LARGE_N" "$LARGE_MIB" "$RUNS"
printf '%-9s %-5s %9s %9s  %s\n' tool run wall_s requests methods
for tool in objstore rclone aws; do
  for pass in first noop; do
    read -r wall reqs methods <<<"$(median "$work/$tool.$pass")"
    printf '%-9s %-5s %9.2f %9d  %s\n' "$tool" "$pass" "$wall" "$reqs" "$methods"
    eval "${tool}_${pass}=$wall; ${tool}_${pass}_req=$reqs"
  done
done
files=$((SMALL_N + LARGE_N))
best_first=$(echo "if ($rclone_first < $aws_first) $rclone_first else $aws_first" | bc -l)
best_noop=$(echo "if ($rclone_noop < $aws_noop) $rclone_noop else $aws_noop" | bc -l)
printf '\nobjstore first run: %.2fx the faster peer (target <= 0.7), %.2f requests per file (target ~1)\n' \
  "$(echo "$objstore_first / $best_first" | bc -l)" "$(echo "$objstore_first_req / $files" | bc -l)"
printf 'objstore no-op run: %.2fx the faster peer, %.2f s (target <= 0.5 s, LIST requests only: %s)\n' \
  "$(echo "$objstore_noop / $best_noop" | bc -l)" "$objstore_noop" \
  "$(median "$work/objstore.noop" | awk '{ print $3 }')"
