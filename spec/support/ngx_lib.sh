# Shared pieces for starting and stopping Debian's nginx with the Lua module
# on a generated configuration (sourced by spec/support/ngx_contract.sh,
# spec/support/tls_front.sh and examples/openresty/run.sh). The caller sets,
# before calling anything:
#   NGX_DIR      the prefix/data directory (config, logs, pid, temp paths)
#   NGX_CONF     the configuration file
#   NGX_PING     a URL that answers 2xx once nginx serves
#   NGX_TAG      name used in messages
# and may set NGX_START_TIMEOUT (seconds, default 15), NGX_READY (a command
# that succeeds once nginx serves; default ngx_ping_ok) and NGX_EXTRA_LOGS
# (more files whose tails a failure shows).
# The master pid is recorded in $NGX_DIR/master.pid; stop ends exactly that
# process (QUIT, then TERM, then KILL), each step bounded.
NGX_MODULES=/usr/lib/nginx/modules

ngx_log() { printf '%s: %s\n' "${NGX_TAG:-nginx}" "$*" >&2; }
ngx_show_logs() {
  local f
  for f in "$NGX_DIR/nginx.out" "$NGX_DIR/error.log" ${NGX_EXTRA_LOGS:-}; do
    [ -s "$f" ] || continue
    echo "----- last lines of $f"
    tail -n 30 "$f"
  done
}
ngx_die() { ngx_log "ERROR: $*"; ngx_show_logs >&2 || true; exit 1; }
ngx_now() { date +%s; }

ngx_alive() {
  local pid pidfile="$NGX_DIR/master.pid"
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 1
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$NGX_CONF"
}

ngx_ping_ok() { curl -fsS --max-time 2 -o /dev/null "$NGX_PING" 2>/dev/null; }

# Debian's Lua 5.1 C modules (cjson, lfs): the LuaJIT ABI.
ngx_lua51_cpath_dir() {
  local so
  so=$(dpkg -L lua-cjson 2>/dev/null | grep -m1 -E '/lua/5\.1/cjson\.so$' || true)
  [ -n "$so" ] || so=/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so
  [ -e "$so" ] || ngx_die "lua-cjson for Lua 5.1/LuaJIT not found (apt-get install lua-cjson)"
  dirname "$so"
}

# `env NAME;` lines for PATH, TMPDIR and every variable matching the
# extended regex $1 (nginx clears the environment of its workers).
ngx_env_lines() {
  local name out=""
  for name in PATH TMPDIR $(env | sed -n 's/^\([A-Za-z0-9_]*\)=.*/\1/p' | grep -E "$1" | sort -u); do
    out="${out}env $name;"$'\n'
  done
  printf '%s' "$out"
}

# "user root;" when run as root (workers would otherwise be nobody and
# could not read the tree).
ngx_user_line() { [ "$(id -u)" -eq 0 ] && echo "user root;" || true; }

# The main-context lines of a one-worker config: in the foreground, pid and
# error log in the data dir.
ngx_main_lines() {
  ngx_user_line
  printf 'worker_processes 1;\ndaemon off;\nmaster_process on;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n' \
    "$NGX_DIR" "$NGX_DIR"
}

ngx_temp_dirs() {
  mkdir -p "$NGX_DIR/tmp/body" "$NGX_DIR/tmp/proxy" "$NGX_DIR/tmp/fastcgi" "$NGX_DIR/tmp/uwsgi" "$NGX_DIR/tmp/scgi"
}

ngx_check_installed() {
  command -v nginx >/dev/null 2>&1 || ngx_die "nginx is not installed (spec/support/install-deps.sh servers)"
  [ -f "$NGX_MODULES/ngx_http_lua_module.so" ] && [ -f "$NGX_MODULES/ndk_http_module.so" ] \
    || ngx_die "the nginx Lua module is not installed (libnginx-mod-http-lua; spec/support/install-deps.sh servers)"
}

ngx_stop() {
  local pid deadline sig
  if ! ngx_alive; then rm -f "$NGX_DIR/master.pid"; return 0; fi
  pid=$(cat "$NGX_DIR/master.pid")
  for sig in QUIT TERM KILL; do
    kill -s "$sig" "$pid" 2>/dev/null || true
    deadline=$(( $(ngx_now) + 5 ))
    while ngx_alive && [ "$(ngx_now)" -lt "$deadline" ]; do sleep 0.1; done
    ngx_alive || break
  done
  ngx_alive && ngx_die "nginx $pid did not stop"
  rm -f "$NGX_DIR/master.pid"
}

# Starts nginx on $NGX_CONF (already written; "daemon off" in it) and waits
# until $NGX_READY (or $NGX_PING) answers.
ngx_start() {
  local out deadline
  out=$(nginx -t -q -p "$NGX_DIR" -e "$NGX_DIR/error.log" -c "$NGX_CONF" 2>&1) \
    || ngx_die "nginx -t rejected $NGX_CONF: $out"
  : >"$NGX_DIR/nginx.out"; : >"$NGX_DIR/error.log"
  setsid nginx -p "$NGX_DIR" -e "$NGX_DIR/error.log" -c "$NGX_CONF" </dev/null >>"$NGX_DIR/nginx.out" 2>&1 9>&- &
  echo $! >"$NGX_DIR/master.pid"
  deadline=$(( $(ngx_now) + ${NGX_START_TIMEOUT:-15} ))
  until ${NGX_READY:-ngx_ping_ok}; do
    ngx_alive || ngx_die "nginx exited during start"
    [ "$(ngx_now)" -lt "$deadline" ] || { ngx_stop; ngx_die "no answer on $NGX_PING within ${NGX_START_TIMEOUT:-15} s"; }
    sleep 0.1
  done
  ngx_log "started nginx $(cat "$NGX_DIR/master.pid") ($NGX_PING)"
}

ngx_with_lock() {
  mkdir -p "$(dirname "$NGX_DIR")"
  exec 9>"$NGX_DIR.lock"
  flock -w 60 9 || ngx_die "could not lock $NGX_DIR.lock within 60 s"
  "$@"
}
