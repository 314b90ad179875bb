#!/usr/bin/env bash
# make bench-openresty: the OpenResty example (examples/openresty) on one
# nginx worker, port 18098, against the local radosgw.
#  1. requests/s of GET /presign (auth, key check, SigV4 presign, JSON)
#     next to GET /ok (ngx.say("ok") only) in the same nginx, with wrk
#     (DURATION seconds each, default 5, 2 threads, 16 connections); the
#     ratio is printed (target >= 70%), and the same ratio by the worker's
#     CPU time per request (steadier on a shared machine).
#     bench/openresty_breakdown.sh splits /presign's cost step by step.
#  2. GET /files/<key> of a SIZE_MIB object (default 256) next to curl
#     straight to rgw with a presigned URL: MiB/s and the ratio.
# Each figure is the median of RUNS runs (default 3). The machine's cores are
# shared with rgw, wrk and curl, so figures are indicative; ratios matter.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
SIZE_MIB=${SIZE_MIB:-256}
PORT=${BENCH_OPENRESTY_PORT:-18098}
DIR=${BENCH_OPENRESTY_DIR:-/tmp/objstore-bench-openresty}
TOKEN=bench-token
BUCKET=${BENCH_BUCKET:-bench-openresty}
BASE=http://127.0.0.1:$PORT
command -v wrk >/dev/null || { echo "wrk is not installed (spec/support/install-deps.sh peers)" >&2; exit 1; }
eval "$(bash spec/support/rgw.sh env)"
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/lua5.4/?.so;;'
work=$(mktemp -d /tmp/objstore-bench-openresty.XXXXXX)
stop() {
  OPENRESTY_DEMO_DIR=$DIR bash examples/openresty/run.sh stop >/dev/null 2>&1 || true
  lua5.4 bench/admin.lua cleanup "$BUCKET" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop EXIT
OPENRESTY_DEMO_PORT=$PORT OPENRESTY_DEMO_DIR=$DIR OPENRESTY_DEMO_WORKERS=1 OBJSTORE_DEMO_TOKEN=$TOKEN \
  OBJSTORE_DEMO_BUCKET=$BUCKET timeout 60 bash examples/openresty/run.sh start >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# The worker's CPU time per request as well as requests/s: on a shared
# machine wrk's figures move with the neighbours' load (the ratio went from
# 41% to 85% between two runs here), the worker's CPU per request much less.
worker=$(pgrep -P "$(cat "$DIR/master.pid")" | head -1)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$worker/stat"; }
rps() { # path -> "requests/s worker-CPU-us-per-request"
  local c0 c1 out
  c0=$(cpu_ticks)
  out=$(wrk -t2 -c16 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "$BASE$1")
  c1=$(cpu_ticks)
  echo "$out" | awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n = $1} /^Requests\/sec/ {r = $2} END {printf "%s %.2f\n", r, c / hz * 1e6 / n}'
}
ok_runs=() presign_runs=() ok_cpu=() presign_cpu=()
rps /ok >/dev/null # warm-up
for _ in $(seq "$RUNS"); do
  read -r r c < <(rps /ok)
  ok_runs+=("$r") ok_cpu+=("$c")
  read -r r c < <(rps "/presign?key=bench/object.bin&method=GET")
  presign_runs+=("$r") presign_cpu+=("$c")
done
ok=$(printf '%s\n' "${ok_runs[@]}" | median)
pre=$(printf '%s\n' "${presign_runs[@]}" | median)
okc=$(printf '%s\n' "${ok_cpu[@]}" | median)
prec=$(printf '%s\n' "${presign_cpu[@]}" | median)
echo "requests/s, 1 worker, median of $RUNS x ${DURATION}s (wrk -t2 -c16); worker CPU us per request:"
printf '  GET /ok       %10.0f   %6.2f us\n  GET /presign  %10.0f   %6.2f us   ratio %.0f%% (target >= 70%%), by CPU %.0f%%\n' \
  "$ok" "$okc" "$pre" "$prec" "$(echo "$pre $ok" | awk '{print 100 * $1 / $2}')" \
  "$(echo "$okc $prec" | awk '{print 100 * $1 / $2}')"

src=$work/src.bin
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$src"
lua5.4 bench/admin.lua create "$BUCKET" >/dev/null 2>&1 || true
curl -sf -o /dev/null --max-time 300 -H "Authorization: Bearer $TOKEN" -T "$src" "$BASE/files/bench/object.bin"
url=$(lua5.4 bench/admin.lua presign "$BUCKET" GET bench/object.bin)
speed() { curl -sf -o /dev/null --max-time 300 -w '%{speed_download}\n' "$@" | awk '{print $1 / 1048576}'; }
via=() direct=()
for _ in $(seq "$RUNS"); do
  via+=("$(speed -H "Authorization: Bearer $TOKEN" "$BASE/files/bench/object.bin")")
  direct+=("$(speed "$url")")
done
v=$(printf '%s\n' "${via[@]}" | median)
d=$(printf '%s\n' "${direct[@]}" | median)
echo "download of $SIZE_MIB MiB, median of $RUNS:"
printf '  GET /files/ (objstore in nginx)  %8.1f MiB/s\n  curl direct to rgw (presigned)   %8.1f MiB/s   ratio %.0f%%\n' \
  "$v" "$d" "$(echo "$v $d" | awk '{print 100 * $1 / $2}')"
echo "(the machine is shared: rgw, nginx, wrk and curl on the same cores)"
