#!/usr/bin/env bash
# Starts or stops the objstore S3 front (examples/front/nginx.conf) on
# 127.0.0.1, storing in the local radosgw of spec/support/rgw.sh unless
# FRONT_STORE_ENDPOINT and its credentials are set.
#
# Usage: examples/front/run.sh start|stop|status|logs
#   start  (re)generates the configuration under $FRONT_DIR, creates the
#          store buckets the tenants file names (idempotent), starts nginx
#          and leaves it running.
#   stop   ends exactly the nginx it started.
# Environment: FRONT_PORT (18780), FRONT_DIR (/tmp/objstore-front),
#   FRONT_TENANTS (examples/front/tenants.json), FRONT_REGION (us-east-1),
#   FRONT_DOMAIN (none: path-style only), FRONT_STORE_ENDPOINT (or FRONT_STORE_ENDPOINTS,
#   comma-separated, for failover),
#   FRONT_STORE_REGION, FRONT_STORE_ACCESS_KEY, FRONT_STORE_SECRET_KEY.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${FRONT_PORT:-18780}
NGX_DIR=${FRONT_DIR:-/tmp/objstore-front}
NGX_DIR=${NGX_DIR%/}
NGX_CONF="$NGX_DIR/nginx.conf"
NGX_PING="http://127.0.0.1:$PORT/objstore-front-ping"
NGX_TAG=objstore-front
BUILD_DIR=${BUILD:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true
# shellcheck source=spec/support/ngx_lib.sh
. "$ROOT/spec/support/ngx_lib.sh"

store_env() {
  if [ -z "${FRONT_STORE_ACCESS_KEY:-}" ]; then
    eval "$(bash "$ROOT/spec/support/rgw.sh" env)"
    export FRONT_STORE_ENDPOINT=${FRONT_STORE_ENDPOINT:-$OBJSTORE_TEST_ENDPOINT}
    export FRONT_STORE_REGION=${FRONT_STORE_REGION:-$OBJSTORE_TEST_REGION}
    export FRONT_STORE_ACCESS_KEY=$OBJSTORE_TEST_ACCESS_KEY
    export FRONT_STORE_SECRET_KEY=$OBJSTORE_TEST_SECRET_KEY
  fi
  export FRONT_STORE_ENDPOINT=${FRONT_STORE_ENDPOINT:-http://127.0.0.1:7480}
  export FRONT_STORE_REGION=${FRONT_STORE_REGION:-us-east-1}
  export FRONT_REGION=${FRONT_REGION:-us-east-1}
  FRONT_TENANTS=${FRONT_TENANTS:-$ROOT/examples/front/tenants.json}
  case $FRONT_TENANTS in /*) ;; *) FRONT_TENANTS="$PWD/$FRONT_TENANTS" ;; esac
  export FRONT_TENANTS
}

write_conf() {
  local cpath
  cpath="$BUILD_DIR/luajit/?.so;$(ngx_lua51_cpath_dir)/?.so;;"
  mkdir -p "$NGX_DIR"
  ngx_temp_dirs
  sed -e "s|@USER_LINE@|$(ngx_user_line)|" -e "s|@PREFIX@|$NGX_DIR|g" -e "s|@ROOT@|$ROOT|g" \
    -e "s|@LUA_CPATH@|$cpath|" -e "s|@PORT@|$PORT|g" "$ROOT/examples/front/nginx.conf" >"$NGX_CONF"
}

# The store buckets the tenants file names, with objstore itself: idempotent.
make_buckets() {
  local lua=luajit
  command -v luajit >/dev/null 2>&1 || lua=lua5.4
  LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$BUILD_DIR/$lua/?.so;;" \
    timeout 60 "$lua" -e '
      local set = assert(require("objstore.front.tenants").load(os.getenv("FRONT_TENANTS")))
      local c = require("objstore").new{ endpoint = os.getenv("FRONT_STORE_ENDPOINT"),
        region = os.getenv("FRONT_STORE_REGION"), addressing = "path",
        access_key = os.getenv("FRONT_STORE_ACCESS_KEY"), secret_key = os.getenv("FRONT_STORE_SECRET_KEY") }
      local done = {}
      for _, t in pairs(set.tenants) do
        for _, m in pairs(t.buckets) do
          if not done[m.store_bucket] then
            done[m.store_bucket] = true
            local ok, err = c:create_bucket(m.store_bucket)
            if not ok and err.code ~= "BucketAlreadyOwnedByYou" and err.code ~= "BucketAlreadyExists" then
              io.stderr:write("cannot create bucket ", m.store_bucket, ": ", tostring(err), "\n") os.exit(1)
            end
          end
        end
      end' || ngx_die "the store buckets of $FRONT_TENANTS could not be created (is the store up? is the file valid?)"
}

cmd_start() {
  ngx_check_installed
  [ -f "$BUILD_DIR/luajit/objstore/core.so" ] || (cd "$ROOT" && make -s build LUA=luajit >/dev/null)
  store_env
  make_buckets
  ngx_stop
  write_conf
  ngx_start
  echo "objstore S3 front on http://127.0.0.1:$PORT (tenants: $FRONT_TENANTS)"
  echo "e.g. AWS_ACCESS_KEY_ID=AKFRONTALICE AWS_SECRET_ACCESS_KEY=alice-secret-change-me aws --endpoint-url http://127.0.0.1:$PORT s3 ls s3://photos"
  echo "stop:  bash examples/front/run.sh stop"
}

case "${1:-}" in
  start) ngx_with_lock cmd_start ;;
  stop) ngx_with_lock ngx_stop; ngx_log "stopped" ;;
  status) if ngx_alive && ngx_ping_ok; then echo "running ($NGX_PING)"; else echo "not running"; exit 1; fi ;;
  logs) ngx_show_logs ;;
  *) echo "usage: $0 start|stop|status|logs" >&2; exit 2 ;;
esac
