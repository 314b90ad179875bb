# Starting and stopping one generated nginx, shared by the scripts that run
# one in front of the test servers (ngx_contract.sh, tls_front.sh). Sourced,
# not run. The caller sets D (its data dir), CONF (the config it writes),
# PIDFILE, NAME (its own name, for messages) and LOG_FILES (an array: what
# a failure shows the tail of); nginx runs in its own session, its master's
# pid recorded, so that stop ends exactly that process.

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
show_logs() {
  local f
  for f in "${LOG_FILES[@]}"; do
    [ -s "$f" ] || continue
    echo "----- last lines of $f"
    tail -n 30 "$f"
  done
}
die() { log "ERROR: $*"; show_logs >&2 || true; exit 1; }

# Debian's Lua 5.1 C modules (cjson, lfs): the LuaJIT ABI.
ngx_lua51_cpath_dir() {
  local so
  so=$(dpkg -L lua-cjson 2>/dev/null | grep -m1 -E '/lua/5\.1/cjson\.so$' || true)
  [ -n "$so" ] || so=/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so
  [ -e "$so" ] || die "lua-cjson for Lua 5.1/LuaJIT not found (apt-get install lua-cjson)"
  dirname "$so"
}

# The main-context lines every generated config starts with: one worker
# (as root when the master is: workers read the tree and write the data
# dir), in the foreground, pid and error log in the data dir.
ngx_main_lines() {
  [ "$(id -u)" -eq 0 ] && echo "user root;"
  printf 'worker_processes 1;\ndaemon off;\nmaster_process on;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n' \
    "$D" "$D"
}

now() { date +%s; }

# Our nginx master is alive: the recorded pid runs nginx with our CONF.
ngx_alive() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 1
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$CONF"
}

# QUIT, then TERM, then KILL, each given 5 s.
ngx_stop() {
  local pid deadline sig
  if ! ngx_alive; then rm -f "$PIDFILE"; return 0; fi
  pid=$(cat "$PIDFILE")
  for sig in QUIT TERM KILL; do
    kill -s "$sig" "$pid" 2>/dev/null || true
    deadline=$(( $(now) + 5 ))
    while ngx_alive && [ "$(now)" -lt "$deadline" ]; do sleep 0.1; done
    ngx_alive || break
  done
  ngx_alive && die "nginx $pid did not stop"
  rm -f "$PIDFILE"
}

# ngx_launch TIMEOUT READY_COMMAND...: checks CONF with nginx -t, starts
# nginx and waits until READY_COMMAND succeeds (at most TIMEOUT seconds).
ngx_launch() {
  local timeout=$1 out deadline
  shift
  out=$(nginx -t -q -p "$D" -e "$D/error.log" -c "$CONF" 2>&1) || die "nginx -t rejected $CONF: $out"
  : >"$D/nginx.out"; : >"$D/error.log"
  setsid nginx -p "$D" -e "$D/error.log" -c "$CONF" </dev/null >>"$D/nginx.out" 2>&1 9>&- &
  echo $! >"$PIDFILE"
  deadline=$(( $(now) + timeout ))
  until "$@"; do
    ngx_alive || die "nginx exited during start"
    [ "$(now)" -lt "$deadline" ] || { ngx_stop; die "nginx not ready within $timeout s"; }
    sleep 0.1
  done
}

# ngx_with_lock FUNCTION...: one start/stop at a time per data dir.
ngx_with_lock() {
  mkdir -p "$(dirname "$D")"
  exec 9>"$D.lock"
  flock -w 60 9 || die "could not lock $D.lock within 60 s"
  "$@"
}
