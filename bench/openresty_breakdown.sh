#!/usr/bin/env bash
# Where the per-request time of the OpenResty example's GET /presign goes:
# the example (one worker) plus locations /step/0 .. /step/7
# (bench/openresty_steps.lua), each adding one piece of the handler to the
# one before; requests/s of each with wrk in the same nginx, then the
# microseconds per request (1e6 / rps) and the difference to the step
# before. Each figure is the median of RUNS rounds (default 3) of DURATION
# seconds (default 3); the steps are interleaved within a round, so a busy
# neighbour slows all of them alike.
#   BENCH_OPENRESTY_PORT (18099) BENCH_OPENRESTY_DIR (/tmp/objstore-bench-breakdown)
#   JITV=1: LuaJIT's trace log (jit.v) of the worker into $DIR/jit.log
#   (aborted traces there are code paths LuaJIT interprets).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-3}
PORT=${BENCH_OPENRESTY_PORT:-18099}
DIR=${BENCH_OPENRESTY_DIR:-/tmp/objstore-bench-breakdown}
TOKEN=bench-token
BASE=http://127.0.0.1:$PORT
command -v wrk >/dev/null || { echo "wrk is not installed (spec/support/install-deps.sh peers)" >&2; exit 1; }
stop() { OPENRESTY_DEMO_DIR=$DIR bash examples/openresty/run.sh stop >/dev/null 2>&1 || true; }
trap stop EXIT
# presign does no I/O: the bucket need not exist (run.sh creates it anyway).
OPENRESTY_DEMO_PORT=$PORT OPENRESTY_DEMO_DIR=$DIR OPENRESTY_DEMO_WORKERS=1 OBJSTORE_DEMO_TOKEN=$TOKEN \
  OBJSTORE_DEMO_BUCKET=${BENCH_BUCKET:-bench-breakdown} timeout 60 bash examples/openresty/run.sh start >/dev/null
# The step locations next to /ok, then a reload (HUP) of the same master.
conf=$DIR/nginx.conf
steps='    location ~ ^/step/([0-9])$ { set $step $1; content_by_lua_block { require("openresty_steps").run(tonumber(ngx.var.step)) } }'
steps="$steps\\n"'    location = /step/loop { content_by_lua_block { require("openresty_steps").loop() } }'
steps="$steps\\n"'    location = /step/timed { content_by_lua_block { require("openresty_steps").timed() } }'
steps="$steps\\n"'    location = /step/stats { content_by_lua_block { require("openresty_steps").stats() } }'
sed -i -e "s|^\(  lua_package_path \"\)|\1$ROOT/bench/?.lua;|" -e "/location = \/ok /i\\$steps" "$conf"
if [ "${JITV:-0}" = 1 ]; then
  sed -i "/^  init_by_lua_block/a\\  init_worker_by_lua_block { require(\"jit.v\").start(\"$DIR/jit.log\") }" "$conf"
fi
nginx -t -q -p "$DIR" -c "$conf"
kill -HUP "$(cat "$DIR/master.pid")"
for _ in $(seq 100); do
  curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/step/7?key=x" && break
  sleep 0.1
done
curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/step/5?key=bench/object.bin" | grep -q '"url"' \
  || { echo "step 5 did not answer a URL" >&2; exit 1; }

worker=""
cpu_ticks() { awk '{print $14 + $15}' "/proc/$worker/stat"; }
# path -> "requests/s worker-CPU-us-per-request" (the worker's utime +
# stime over the run, divided by the requests wrk counted).
rps() {
  local c0 c1 out
  c0=$(cpu_ticks)
  out=$(wrk -t2 -c16 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "$BASE$1")
  c1=$(cpu_ticks)
  echo "$out" | awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n = $1} /^Requests\/sec/ {r = $2} END {printf "%s %.2f\n", r, c / hz * 1e6 / n}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
path() { # a step number, or "ok" / "presign": the example's own locations
  case $1 in ok) echo /ok ;; presign) echo "/presign?key=bench/object.bin&method=GET" ;;
    *) echo "/step/$1?key=bench/object.bin&method=GET" ;; esac
}
worker=$(pgrep -P "$(cat "$DIR/master.pid")" | head -1)
rps "$(path 5)" >/dev/null # warm-up
declare -A got cpu
for _ in $(seq "$RUNS"); do
  for s in 0 1 2 3 4 5 6 7 ok presign; do
    read -r r c < <(rps "$(path "$s")")
    got[$s]="${got[$s]:-} $r" cpu[$s]="${cpu[$s]:-} $c"
  done
done
names=$(lua5.4 -e 'package.path = "bench/?.lua;" .. package.path
  common = {} package.loaded.common = common package.loaded["cjson.safe"] = { encode = tostring }
  local n = require("openresty_steps").NAMES for i = 0, 7 do print(n[i]) end')
echo "GET /presign step by step, 1 worker, median of $RUNS x ${DURATION}s (wrk -t2 -c16);"
echo "us/req = 1e6 / (req/s); cpu/req = the nginx worker's CPU time per request:"
printf '  %-44s %9s %8s %8s %8s %8s\n' step req/s us/req "+us" cpu/req "+cpu"
prev="" prevc=""
for s in 0 1 2 3 4 5 6 7; do
  r=$(printf '%s\n' ${got[$s]} | median)
  c=$(printf '%s\n' ${cpu[$s]} | median)
  name=$(echo "$names" | sed -n "$((s + 1))p")
  us=$(awk -v r="$r" 'BEGIN {printf "%.2f", 1e6 / r}')
  diff() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.2f", a - b}'; }
  if [ "$s" -ge 1 ] && [ "$s" -le 5 ]; then d=$(diff "$us" "$prev") dc=$(diff "$c" "$prevc")
  elif [ "$s" -gt 5 ]; then d=$(diff "$us" "$us0") dc=$(diff "$c" "$c0")
  else d="" dc="" us0=$us c0=$c; fi
  printf '  %d %-42s %9.0f %8s %8s %8s %8s\n' "$s" "$name" "$r" "$us" "$d" "$c" "$dc"
  prev=$us prevc=$c
done
for s in ok presign; do
  r=$(printf '%s\n' ${got[$s]} | median)
  c=$(printf '%s\n' ${cpu[$s]} | median)
  printf '  %-44s %9.0f %8s %8s %8s\n' "the example's /$s" "$r" "$(awk -v r="$r" 'BEGIN {printf "%.2f", 1e6 / r}')" "" "$c"
done
r_ok=$(printf '%s\n' ${got[ok]} | median) r_pre=$(printf '%s\n' ${got[presign]} | median)
echo "  /presign / /ok: $(awk -v a="$r_pre" -v b="$r_ok" 'BEGIN {printf "%.0f%%", 100 * a / b}')"
echo "(+: against the step before; steps 6 and 7 against step 0)"
curl -sf -o /dev/null "$BASE/step/stats"
rps "/step/timed?key=bench/object.bin&method=GET" >/dev/null
echo "the pieces of step 5 timed inside each request of a ${DURATION}s wrk run (wall time, mean):"
curl -sf --max-time 10 "$BASE/step/stats"
echo "the same pieces in a loop inside the worker (CPU time, best of 5 x 20000):"
curl -sf --max-time 120 -H "Authorization: Bearer $TOKEN" "$BASE/step/loop?key=bench/object.bin"
[ "${JITV:-0}" = 1 ] && echo "LuaJIT trace log: $DIR/jit.log ($(grep -c 'TRACE.*abort' "$DIR/jit.log" || true) aborts)"
exit 0
