#!/usr/bin/env bash
# A TLS front for the rgw, for spec/tls_spec.lua: a throwaway CA, a server
# certificate it signed for 127.0.0.1 and localhost, a second one for a
# host name no test uses, and nginx (plain, no Lua) terminating TLS and
# proxying to rgw. 127.0.0.1 only; started and stopped through
# spec/support/ngx_lib.sh like the other nginx helpers.
#
# Usage: spec/support/tls_front.sh start|stop|status|env|logs
#   start   idempotent; generates the CA and certificates (once per data dir)
#           and the config, starts nginx, waits at most
#           TLS_FRONT_START_TIMEOUT seconds (default 15).
#   stop    ends exactly the recorded nginx master, bounded.
#   env     `export` lines: TLS_FRONT_CA (the CA certificate, PEM),
#           TLS_FRONT_ENDPOINT (https://127.0.0.1:PORT, the right name),
#           TLS_FRONT_WRONG_NAME (PORT+1, certificate for wrong-name.invalid),
#           TLS_FRONT_TLS12 (PORT+2, the right certificate, TLS 1.2 only),
#           TLS_FRONT_NGX (http://127.0.0.1:PORT+3: GET /ngx/<case> runs that
#           TLS case of spec/support/ngx_tls_cases.lua with the ngx transport;
#           only when nginx has its Lua module and build/luajit the core).
#
# Environment: TLS_FRONT_DIR (default /tmp/objstore-tls-front), TLS_FRONT_PORT
#   (18443; also uses the next three), TLS_FRONT_UPSTREAM (127.0.0.1:7480).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=${TLS_FRONT_DIR:-/tmp/objstore-tls-front}
D=${D%/}
PORT=${TLS_FRONT_PORT:-18443}
UPSTREAM=${TLS_FRONT_UPSTREAM:-127.0.0.1:7480}
TIMEOUT=${TLS_FRONT_START_TIMEOUT:-15}
CONF="$D/nginx.conf"
MODULES=/usr/lib/nginx/modules
BUILD_DIR=${BUILD:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
PIDFILE="$D/master.pid"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY || true

NGX_DIR=$D NGX_CONF=$CONF NGX_TAG=tls_front.sh NGX_START_TIMEOUT=$TIMEOUT NGX_READY=ping_ok
NGX_PING="https://127.0.0.1:$PORT/__tls_front_ping"
NGX_EXTRA_LOGS="$D/certs.log"
# shellcheck source=spec/support/ngx_lib.sh
. "$ROOT/spec/support/ngx_lib.sh"
log() { ngx_log "$@"; }
die() { ngx_die "$@"; }

# issue NAME SAN: a key and a certificate signed by the CA.
issue() {
  local name=$1 san=$2 t="$D/tls"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$t/$name.key" -out "$t/$name.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$t/$name.ext"
  openssl x509 -req -in "$t/$name.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -days 30 \
    -extfile "$t/$name.ext" -out "$t/$name.crt"
}

make_certs() {
  local t="$D/tls"
  [ -s "$t/ca.crt" ] && [ -s "$t/server.crt" ] && [ -s "$t/wrong.crt" ] && return 0
  command -v openssl >/dev/null 2>&1 || die "openssl is not installed"
  rm -rf "$t"; mkdir -p "$t"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=objstore test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$t/ca.key" -out "$t/ca.crt"
    issue server "IP:127.0.0.1,DNS:localhost"
    issue wrong "DNS:wrong-name.invalid"
  } >"$D/certs.log" 2>&1 || die "openssl failed"
}

# server PORT CERT [PROTOCOLS]
server_block() {
  cat <<EOT
  server {
    listen 127.0.0.1:$1 ssl;
    ssl_certificate $D/tls/$2.crt;
    ssl_certificate_key $D/tls/$2.key;
    ssl_protocols ${3:-TLSv1.2 TLSv1.3};
    location = /__tls_front_ping { return 200 "ok\n"; }
    location / {
      proxy_pass http://rgw;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_request_buffering off;
      proxy_buffering off;
      client_max_body_size 0;
    }
  }
EOT
}

# The cases of spec/support/ngx_tls_cases.lua on PORT+3, when nginx has its
# Lua module and the objstore core is built for LuaJIT.
ngx_cases() {
  local lua_path lua_cpath p=$((PORT + 3)) t="$D/tls" name c
  [ -f "$MODULES/ngx_http_lua_module.so" ] && [ -f "$BUILD_DIR/luajit/objstore/core.so" ] || return 0
  lua_path="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;$ROOT/spec/support/?.lua;"
  lua_path="$lua_path/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;"
  lua_cpath="$BUILD_DIR/luajit/?.so;$(ngx_lua51_cpath_dir)/?.so;;"
  cat <<EOT
  lua_package_path "$lua_path";
  lua_package_cpath "$lua_cpath";
  lua_socket_log_errors off;
  server {
    listen 127.0.0.1:$p;
    location = /ngx/ping { return 200 "ok\n"; }
EOT
  # case, front port, trusted CA or not, protocols
  for c in "default $PORT -" "ca $PORT $t/ca.crt" "wrong-name $((PORT + 1)) $t/ca.crt" \
      "min-version $((PORT + 2)) $t/ca.crt TLSv1.3" "insecure $((PORT + 1)) -" "call-hooks $PORT $t/ca.crt" \
      "min-option $((PORT + 2)) $t/ca.crt" "min-option-equal $((PORT + 2)) $t/ca.crt" \
      "min-option-ok $PORT $t/ca.crt TLSv1.2 TLSv1.3"; do
    set -- $c
    name=$1
    printf '    location = /ngx/%s {\n      set $front https://127.0.0.1:%s;\n' "$name" "$2"
    [ "$3" != - ] && printf '      lua_ssl_trusted_certificate %s;\n' "$3"
    [ -n "${4:-}" ] && shift 3 && printf '      lua_ssl_protocols %s;\n' "$*"
    printf '      content_by_lua_block { require("ngx_tls_cases").run("%s") }\n    }\n' "$name"
  done
  echo "  }"
}

ngx_module_lines() {
  [ -f "$MODULES/ngx_http_lua_module.so" ] && [ -f "$BUILD_DIR/luajit/objstore/core.so" ] || return 0
  echo "load_module $MODULES/ndk_http_module.so;"
  echo "load_module $MODULES/ngx_http_lua_module.so;"
  local name
  for name in $(env | sed -n 's/^\(OBJSTORE_TEST_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do echo "env $name;"; done
}

write_conf() {
  mkdir -p "$D/tmp"
  cat >"$CONF" <<EOF2
# Generated by spec/support/tls_front.sh; do not edit.
$(ngx_module_lines)
$(ngx_main_lines)
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $D/tmp;
  proxy_temp_path $D/tmp;
  fastcgi_temp_path $D/tmp;
  uwsgi_temp_path $D/tmp;
  scgi_temp_path $D/tmp;
  proxy_read_timeout 60s;
  upstream rgw { server $UPSTREAM; keepalive 8; }
$(server_block "$PORT" server)
$(server_block "$((PORT + 1))" wrong)
$(server_block "$((PORT + 2))" server TLSv1.2)
$(ngx_cases)
}
EOF2
}

ping_ok() {
  curl -fsS --max-time 2 --cacert "$D/tls/ca.crt" -o /dev/null "https://127.0.0.1:$PORT/__tls_front_ping" 2>/dev/null
}

cmd_start() {
  command -v nginx >/dev/null 2>&1 || die "nginx is not installed (spec/support/install-deps.sh servers)"
  if ngx_alive && ping_ok; then return 0; fi
  ngx_stop
  mkdir -p "$D"
  # The ngx cases sign for the rgw: nginx inherits its keys, whoever
  # started the front.
  [ -n "${OBJSTORE_TEST_ACCESS_KEY:-}" ] || eval "$(bash "$ROOT/spec/support/rgw.sh" env)"
  make_certs
  write_conf
  ngx_start
  log "started nginx $(cat "$PIDFILE") on 127.0.0.1:$PORT-$((PORT + 2)) in front of $UPSTREAM"
}

cmd_env() {
  echo "export TLS_FRONT_CA=$D/tls/ca.crt"
  echo "export TLS_FRONT_ENDPOINT=https://127.0.0.1:$PORT"
  echo "export TLS_FRONT_WRONG_NAME=https://127.0.0.1:$((PORT + 1))"
  echo "export TLS_FRONT_TLS12=https://127.0.0.1:$((PORT + 2))"
  # The cosocket location is there only when it was started with one: no
  # line (and still success) otherwise.
  if grep -q "/ngx/ping" "$CONF" 2>/dev/null; then echo "export TLS_FRONT_NGX=http://127.0.0.1:$((PORT + 3))"; fi
}

case "${1:-}" in
  start) ngx_with_lock cmd_start ;;
  stop) ngx_with_lock ngx_stop; log "stopped" ;;
  status)
    if ngx_alive && ping_ok; then echo "tls_front: running (127.0.0.1:$PORT)"; exit 0; fi
    echo "tls_front: not running"; exit 1 ;;
  env) cmd_env ;;
  logs) ngx_show_logs ;;
  *) echo "usage: $0 start|stop|status|env|logs" >&2; exit 2 ;;
esac
