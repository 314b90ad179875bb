#!/usr/bin/env bash
# make demo: runs every quickstart in examples/ against the Lua 5.4 build.
set -eu
cd "$(dirname "$0")/.."
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'
export LUA_CPATH='./build/lua5.4/?.so;;'
for f in examples/quickstart_*.lua; do
  echo "== $f"
  lua5.4 "$f"
done
