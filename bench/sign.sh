#!/usr/bin/env bash
# make bench-sign: presigned GET URLs and header signatures per second from
# Lua 5.4 and LuaJIT, next to boto3's generate_presigned_url, in one run.
# Each rate comes with its floor: the two core.hash calls (SHA-256 of the
# canonical request, HMAC-SHA256 of the string to sign with the derived key)
# on the strings that request signs; "x floor" is signing cost / floor cost.
# Rates are CPU-time based (os.clock / process_time), best of 5 rounds.
# BUILD selects the build directory (default build), ROUND the seconds per round.
set -eu
cd "$(dirname "$0")/.."
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'
round=${ROUND:-0.5}
build=${BUILD:-build}
declare -A pre pfl sig sfl
for lua in lua5.4 luajit; do
  out=$(LUA_CPATH="$build/$lua/?.so;;" taskset -c 0 "$lua" bench/sign.lua "$round")
  field() { echo "$out" | sed -n "s/^$1 \([0-9]*\)\/s$/\1/p"; }
  pre[$lua]=$(field presign)
  pfl[$lua]=$(field presign_floor)
  sig[$lua]=$(field sign)
  sfl[$lua]=$(field sign_floor)
done
boto=$(taskset -c 0 /usr/bin/python3 bench/sign_boto3.py "$round" | sed -n 's/^presign \([0-9]*\)\/s$/\1/p')
ratio() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN{printf f, a/b}'; }
printf '%-28s %10s %10s %8s %10s %10s %8s %9s\n' "client" "presign/s" "floor/s" "x floor" \
  "sign/s" "floor/s" "x floor" "vs boto3"
for lua in lua5.4 luajit; do
  printf '%-28s %10s %10s %7sx %10s %10s %7sx %8sx\n' "objstore ($lua)" \
    "${pre[$lua]}" "${pfl[$lua]}" "$(ratio "${pfl[$lua]}" "${pre[$lua]}" %.2f)" \
    "${sig[$lua]}" "${sfl[$lua]}" "$(ratio "${sfl[$lua]}" "${sig[$lua]}" %.2f)" \
    "$(ratio "${pre[$lua]}" "$boto" %.0f)"
done
printf '%-28s %10s %10s %8s %10s %10s %8s %9s\n' "boto3 generate_presigned_url" "$boto" "-" "-" \
  "-" "-" "-" "1x"
