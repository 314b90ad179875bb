#!/usr/bin/env bash
# make bench-sign: presigned GET URLs and header signatures per second from
# Lua 5.4 and LuaJIT, next to boto3's generate_presigned_url, in one run.
# Rates are CPU-time based (os.clock / process_time), best of 5 rounds.
set -eu
cd "$(dirname "$0")/.."
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'
round=${ROUND:-0.5}
declare -A pre sig
for lua in lua5.4 luajit; do
  out=$(LUA_CPATH="./build/$lua/?.so;;" taskset -c 0 "$lua" bench/sign.lua "$round")
  pre[$lua]=$(echo "$out" | sed -n 's/^presign \([0-9]*\)\/s$/\1/p')
  sig[$lua]=$(echo "$out" | sed -n 's/^sign \([0-9]*\)\/s$/\1/p')
done
boto=$(taskset -c 0 /usr/bin/python3 bench/sign_boto3.py "$round" | sed -n 's/^presign \([0-9]*\)\/s$/\1/p')
printf '%-28s %12s %12s %10s\n' "client" "presign/s" "sign/s" "vs boto3"
for lua in lua5.4 luajit; do
  printf '%-28s %12s %12s %9sx\n' "objstore ($lua)" "${pre[$lua]}" "${sig[$lua]}" \
    "$(awk -v a="${pre[$lua]}" -v b="$boto" 'BEGIN{printf "%.0f", a/b}')"
done
printf '%-28s %12s %12s %10s\n' "boto3 generate_presigned_url" "$boto" "-" "1x"
