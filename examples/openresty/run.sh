#!/usr/bin/env bash
# Starts or stops the OpenResty example (examples/openresty/nginx.conf) on
# 127.0.0.1, against the local radosgw of spec/support/rgw.sh unless
# AWS_ENDPOINT_URL and credentials are set.
#
# Usage: examples/openresty/run.sh start|stop|status|logs
#   start  (re)generates the configuration from nginx.conf under
#          $OPENRESTY_DEMO_DIR, creates the bucket, starts nginx and leaves
#          it running; prints the URL and the token.
#   stop   ends exactly the nginx it started.
# Environment: OPENRESTY_DEMO_PORT (8088), OPENRESTY_DEMO_H2_PORT (HTTP/2
#   cleartext, prior knowledge, on that port; default 0: none), OPENRESTY_DEMO_WORKERS
#   (auto), OPENRESTY_DEMO_DIR (/tmp/objstore-openresty-demo),
#   OBJSTORE_DEMO_TOKEN (a random one when unset; empty: the example
#   refuses to serve), OBJSTORE_DEMO_METRICS_TOKEN (none), OBJSTORE_DEMO_BUCKET
#   (objstore-demo), OBJSTORE_DEMO_THRESHOLD, OBJSTORE_DEMO_PART_SIZE, OBJSTORE_DEMO_DEADLINE,
#   AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${OPENRESTY_DEMO_PORT:-8088}
H2PORT=${OPENRESTY_DEMO_H2_PORT:-0}
WORKERS=${OPENRESTY_DEMO_WORKERS:-auto}
NGX_DIR=${OPENRESTY_DEMO_DIR:-/tmp/objstore-openresty-demo}
NGX_DIR=${NGX_DIR%/}
NGX_CONF="$NGX_DIR/nginx.conf"
NGX_PING="http://127.0.0.1:$PORT/ping"
NGX_TAG=openresty-demo
BUILD_DIR=${BUILD:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true
# shellcheck source=spec/support/ngx_lib.sh
. "$ROOT/spec/support/ngx_lib.sh"

store_env() {
  if [ -z "${AWS_ACCESS_KEY_ID:-}" ]; then
    eval "$(bash "$ROOT/spec/support/rgw.sh" env)"
    export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-$OBJSTORE_TEST_ENDPOINT}
    export AWS_REGION=${AWS_REGION:-$OBJSTORE_TEST_REGION}
    export AWS_ACCESS_KEY_ID=$OBJSTORE_TEST_ACCESS_KEY
    export AWS_SECRET_ACCESS_KEY=$OBJSTORE_TEST_SECRET_KEY
  fi
  export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:7480} AWS_REGION=${AWS_REGION:-us-east-1}
  # A token of its own for this demo when none is given (printed below);
  # set but empty is left empty: the example then refuses to serve.
  if [ -z "${OBJSTORE_DEMO_TOKEN+set}" ]; then
    OBJSTORE_DEMO_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  fi
  export OBJSTORE_DEMO_TOKEN
  export OBJSTORE_DEMO_BUCKET=${OBJSTORE_DEMO_BUCKET:-objstore-demo}
}

write_conf() {
  local cpath
  cpath="$BUILD_DIR/luajit/?.so;$(ngx_lua51_cpath_dir)/?.so;;"
  mkdir -p "$NGX_DIR"
  ngx_temp_dirs
  local h2="s|@H2@||"
  [ "$H2PORT" = 0 ] && h2="/@H2@/d"
  sed -e "$h2" -e "s|@USER_LINE@|$(ngx_user_line)|" -e "s|@WORKERS@|$WORKERS|" -e "s|@PREFIX@|$NGX_DIR|g" \
    -e "s|@ROOT@|$ROOT|g" -e "s|@LUA_CPATH@|$cpath|" -e "s|@PORT@|$PORT|g" -e "s|@H2PORT@|$H2PORT|g" \
    "$ROOT/examples/openresty/nginx.conf" >"$NGX_CONF"
}

# The bucket, with objstore itself (plain Lua, libcurl): idempotent.
make_bucket() {
  local lua=luajit
  command -v luajit >/dev/null 2>&1 || lua=lua5.4
  LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$BUILD_DIR/$lua/?.so;;" \
    timeout 30 "$lua" -e '
      local c = require("objstore").new{ endpoint = os.getenv("AWS_ENDPOINT_URL"), region = os.getenv("AWS_REGION"),
        addressing = "path" }
      local b = os.getenv("OBJSTORE_DEMO_BUCKET")
      local ok, err = c:create_bucket(b)
      if not ok and err.code ~= "BucketAlreadyOwnedByYou" and err.code ~= "BucketAlreadyExists" then
        io.stderr:write("cannot create bucket ", b, ": ", tostring(err), "\n") os.exit(1)
      end' || ngx_log "warning: the bucket $OBJSTORE_DEMO_BUCKET could not be created (the store is down or no credentials?)"
}

cmd_start() {
  ngx_check_installed
  [ -f "$BUILD_DIR/luajit/objstore/core.so" ] || (cd "$ROOT" && make -s build LUA=luajit >/dev/null)
  store_env
  make_bucket
  ngx_stop
  write_conf
  ngx_start
  echo "objstore OpenResty demo on http://127.0.0.1:$PORT, bucket $OBJSTORE_DEMO_BUCKET"
  echo "token: $OBJSTORE_DEMO_TOKEN    e.g. curl -H 'Authorization: Bearer $OBJSTORE_DEMO_TOKEN' 'http://127.0.0.1:$PORT/list?prefix='"
  echo "stop:  bash examples/openresty/run.sh stop"
}

case "${1:-}" in
  start) ngx_with_lock cmd_start ;;
  stop) ngx_with_lock ngx_stop; ngx_log "stopped" ;;
  status) if ngx_alive && ngx_ping_ok; then echo "running ($NGX_PING)"; else echo "not running"; exit 1; fi ;;
  logs) ngx_show_logs ;;
  *) echo "usage: $0 start|stop|status|logs" >&2; exit 2 ;;
esac
