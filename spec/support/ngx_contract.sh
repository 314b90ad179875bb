#!/usr/bin/env bash
# The transport contract (spec/support/transport_contract.lua) run against
# objstore.transport.ngx inside a real nginx (Debian's nginx and
# libnginx-mod-http-lua, from spec/support/install-deps.sh), for
# spec/ngx_transport_spec.lua. Same approach as faultproxy.sh: a generated
# configuration under its own data dir, one worker, 127.0.0.1 only.
#
# Usage: spec/support/ngx_contract.sh start|stop|status|run|logs
#   start   idempotent; (re)generates the config and starts nginx, waiting at
#           most NGX_CONTRACT_START_TIMEOUT seconds (default 15). Needs the
#           objstore core built for LuaJIT in ./build/luajit, or
#           $BUILD/luajit (make build LUA=luajit).
#   stop    ends exactly the recorded nginx master (QUIT, TERM, KILL), bounded.
#   run     start, GET /contract (at most NGX_CONTRACT_RUN_TIMEOUT s, default
#           300), print the report, stop; exit 0 iff it ends "N passed, 0 failed".
#   logs    tail of the error log.
#
# GET /contract runs spec/support/ngx_contract_runner.lua in a content
# handler: every case of the contract with a busted-compatible shim, one line
# per case and last "N passed, N failed, N pending". The servers come from
# the environment (OBJSTORE_TEST_*, OBJSTORE_SWIFT_*: eval "$(bash
# spec/support/rgw.sh env)"), passed to the worker with `env` lines; the
# contract's bucket is named ngx-... .
#
# Environment: NGX_CONTRACT_DIR (default /tmp/objstore-ngx-contract),
#   NGX_CONTRACT_PORT (18090; the TLS cases use the next two ports, the
#   forward proxy the third), NGX_CONTRACT_START_TIMEOUT (15),
#   NGX_CONTRACT_RUN_TIMEOUT (300).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=${NGX_CONTRACT_DIR:-/tmp/objstore-ngx-contract}
D=${D%/}
PORT=${NGX_CONTRACT_PORT:-18090}
TIMEOUT=${NGX_CONTRACT_START_TIMEOUT:-15}
RUN_TIMEOUT=${NGX_CONTRACT_RUN_TIMEOUT:-300}
# The LuaJIT core: $BUILD/luajit (make's BUILD, default build) below the tree.
BUILD_DIR=${BUILD:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
CONF="$D/nginx.conf"
PIDFILE="$D/master.pid"
MODULES=/usr/lib/nginx/modules
ENDPOINT="http://127.0.0.1:$PORT"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true

log() { printf 'ngx_contract.sh: %s\n' "$*" >&2; }
show_logs() {
  local f
  for f in "$D/nginx.out" "$D/error.log"; do
    [ -s "$f" ] || continue
    echo "----- last lines of $f"
    tail -n 30 "$f"
  done
}
die() { log "ERROR: $*"; show_logs >&2 || true; exit 1; }
now() { date +%s; }

alive() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 1
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$CONF"
}

ping_ok() { curl -fsS --max-time 2 -o /dev/null "$ENDPOINT/ping" 2>/dev/null; }

# Debian's Lua 5.1 C modules (cjson, lfs): the LuaJIT ABI.
lua51_cpath_dir() {
  local so
  so=$(dpkg -L lua-cjson 2>/dev/null | grep -m1 -E '/lua/5\.1/cjson\.so$' || true)
  [ -n "$so" ] || so=/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so
  [ -e "$so" ] || die "lua-cjson for Lua 5.1/LuaJIT not found (apt-get install lua-cjson)"
  dirname "$so"
}

# Two self-signed certificates for the TLS cases (when openssl is there):
# "trusted" (the workers' lua_ssl_trusted_certificate) and "other".
make_certs() {
  local n
  command -v openssl >/dev/null 2>&1 || return 1
  mkdir -p "$D/tls"
  for n in trusted other; do
    [ -s "$D/tls/$n.crt" ] && [ -s "$D/tls/$n.key" ] && continue
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost" -keyout "$D/tls/$n.key" -out "$D/tls/$n.crt" >/dev/null 2>&1 \
      || return 1
  done
}

write_conf() {
  local user_line="" env_lines="" name lua_path lua_cpath tls_http="" tls_servers="" tls_ports=""
  lua_path="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;$ROOT/spec/support/?.lua;"
  lua_path="$lua_path/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;"
  lua_cpath="$BUILD_DIR/luajit/?.so;$(lua51_cpath_dir)/?.so;;"
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  # nginx clears the environment of its workers: name what the contract reads.
  for name in PATH TMPDIR $(env | sed -n 's/^\(OBJSTORE_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do
    env_lines="${env_lines}env $name;"$'\n'
  done
  if make_certs; then
    tls_ports="$((PORT + 1)) $((PORT + 2))"
    tls_http="lua_ssl_trusted_certificate $D/tls/trusted.crt;"
    tls_servers="
  server {
    listen 127.0.0.1:$((PORT + 1)) ssl;
    ssl_certificate $D/tls/trusted.crt;
    ssl_certificate_key $D/tls/trusted.key;
    location = /hello { return 200 \"hello\"; }
  }
  server {
    listen 127.0.0.1:$((PORT + 2)) ssl;
    ssl_certificate $D/tls/other.crt;
    ssl_certificate_key $D/tls/other.key;
    location = /hello { return 200 \"hello\"; }
  }"
  fi
  mkdir -p "$D/tmp/body" "$D/tmp/proxy" "$D/tmp/fastcgi" "$D/tmp/uwsgi" "$D/tmp/scgi"
  cat >"$CONF" <<EOF
# Generated by spec/support/ngx_contract.sh; do not edit.
load_module $MODULES/ndk_http_module.so;
load_module $MODULES/ngx_http_lua_module.so;
$user_line
worker_processes 1;
daemon off;
master_process on;
pid $D/nginx.pid;
error_log $D/error.log warn;
$env_lines
events { worker_connections 256; }

http {
  lua_package_path "$lua_path";
  lua_package_cpath "$lua_cpath";
  lua_socket_log_errors off;
  $tls_http
  init_worker_by_lua_block { math.randomseed(ngx.now() * 1000 + ngx.worker.pid()) }
  access_log off;
  client_body_temp_path $D/tmp/body;
  proxy_temp_path $D/tmp/proxy;
  fastcgi_temp_path $D/tmp/fastcgi;
  uwsgi_temp_path $D/tmp/uwsgi;
  scgi_temp_path $D/tmp/scgi;

  server {
    listen 127.0.0.1:$PORT;
    server_tokens off;
    default_type text/plain;
    send_timeout 600s;
    location = /ping { return 200 "ok\n"; }
    # for the ngx-specific cases of ngx_contract_runner.lua
    location = /hello { return 200 "hello"; }
    location = /nocontent { return 204; }
    location = /forbidden { return 403; }
    location = /closing { keepalive_timeout 0; return 200 "bye"; }
    location = /big { content_by_lua_block { ngx.print(("x"):rep(1048576)) } }
    location = /raw { content_by_lua_block { require("ngx_contract_runner").raw() } }
    # spec/ngx_credentials_spec.lua: an assume_role provider on cosockets
    location = /credentials { content_by_lua_block { require("ngx_credentials_runner").run() } }
    location = /contract {
      set \$tls_ports "$tls_ports";
      set \$forward_proxy_port $((PORT + 3));
      lua_check_client_abort on;
      content_by_lua_block { require("ngx_contract_runner").run() }
    }
  }
$tls_servers
  # A forward proxy for plain http (absolute-form request targets).
  server {
    listen 127.0.0.1:$((PORT + 3));
    location / {
      proxy_pass http://\$http_host;
      add_header X-Via-Proxy 1;
    }
  }
}
EOF
}

stop_nginx() {
  local pid deadline sig
  if ! alive; then rm -f "$PIDFILE"; return 0; fi
  pid=$(cat "$PIDFILE")
  for sig in QUIT TERM KILL; do
    kill -s "$sig" "$pid" 2>/dev/null || true
    deadline=$(( $(now) + 5 ))
    while alive && [ "$(now)" -lt "$deadline" ]; do sleep 0.1; done
    alive || break
  done
  alive && die "nginx $pid did not stop"
  rm -f "$PIDFILE"
}

cmd_start() {
  command -v nginx >/dev/null 2>&1 || die "nginx is not installed (spec/support/install-deps.sh servers)"
  [ -f "$MODULES/ngx_http_lua_module.so" ] && [ -f "$MODULES/ndk_http_module.so" ] \
    || die "the nginx Lua module is not installed (libnginx-mod-http-lua; spec/support/install-deps.sh servers)"
  [ -f "$BUILD_DIR/luajit/objstore/core.so" ] \
    || die "no objstore core for LuaJIT in $BUILD_DIR/luajit (make build LUA=luajit)"
  stop_nginx
  mkdir -p "$D"
  write_conf
  local out
  out=$(nginx -t -q -p "$D" -e "$D/error.log" -c "$CONF" 2>&1) || die "nginx -t rejected $CONF: $out"
  : >"$D/nginx.out"; : >"$D/error.log"
  setsid nginx -p "$D" -e "$D/error.log" -c "$CONF" </dev/null >>"$D/nginx.out" 2>&1 9>&- &
  echo $! >"$PIDFILE"
  local deadline=$(( $(now) + TIMEOUT ))
  until ping_ok; do
    alive || die "nginx exited during start"
    [ "$(now)" -lt "$deadline" ] || { stop_nginx; die "no answer on $ENDPOINT/ping within $TIMEOUT s"; }
    sleep 0.1
  done
  log "started nginx $(cat "$PIDFILE") on $ENDPOINT"
}

cmd_run() {
  local out rc=0
  cmd_start
  out=$(curl -sS --max-time "$RUN_TIMEOUT" "$ENDPOINT/contract" 2>&1) || rc=$?
  stop_nginx
  printf '%s\n' "$out"
  [ "$rc" -eq 0 ] || die "GET /contract failed (curl exit $rc)"
  printf '%s\n' "$out" | tail -n 1 | grep -Eq '^[0-9]+ passed, 0 failed' || exit 1
}

with_lock() {
  mkdir -p "$(dirname "$D")"
  exec 9>"$D.lock"
  flock -w 60 9 || die "could not lock $D.lock within 60 s"
  "$@"
}

case "${1:-}" in
  start) with_lock cmd_start ;;
  stop) with_lock stop_nginx; log "stopped" ;;
  status)
    if alive && ping_ok; then echo "ngx_contract: running ($ENDPOINT)"; exit 0; fi
    echo "ngx_contract: not running"; exit 1 ;;
  run) with_lock cmd_run ;;
  logs) show_logs ;;
  *) echo "usage: $0 start|stop|status|run|logs" >&2; exit 2 ;;
esac
