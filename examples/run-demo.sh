#!/usr/bin/env bash
# make demo: starts a local Ceph radosgw on 127.0.0.1 (spec/support/rgw.sh)
# and runs every quickstart in examples/ against the Lua 5.4 build.
set -eu
cd "$(dirname "$0")/.."
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'
export LUA_CPATH='./build/lua5.4/?.so;;'
echo "== starting a local S3 server (Ceph radosgw on 127.0.0.1)"
bash spec/support/rgw.sh start
eval "$(bash spec/support/rgw.sh env)"
for f in examples/quickstart_*.lua; do
  echo "== $f"
  lua5.4 "$f"
done
