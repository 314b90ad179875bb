#!/usr/bin/env bash
# Runs the busted specs and the external vectors on each Lua given
# (lua5.1 lua5.2 lua5.3 lua5.4 luajit), then prints one line CI can read:
#   N passed, N failed
# Busted's own summary is not such a line, so its TAP output is counted.
# Extra busted arguments can be passed in BUSTED_ARGS (e.g. "--exclude-tags=server").
set -u
cd "$(dirname "$0")/../.."

# The integration specs (tag "server") need the real servers: start them
# (each script returns at once when its server is already healthy).
if [ -z "${OBJSTORE_NO_SERVERS:-}" ]; then
  bash spec/support/rgw.sh start >&2 || { echo "rgw failed to start"; echo "0 passed, 1 failed"; exit 1; }
  bash spec/support/swift.sh start >&2 || { echo "swift failed to start"; echo "0 passed, 1 failed"; exit 1; }
  eval "$(bash spec/support/rgw.sh env)"
  eval "$(bash spec/support/swift.sh env)"
else
  BUSTED_ARGS="${BUSTED_ARGS:-} --exclude-tags=server"
fi

pass=0 fail=0 skip=0
for lua in "$@"; do
  echo "== $lua"
  tap=$(mktemp)
  # shellcheck disable=SC2086
  busted --lua="$lua" --cpath="${BUILD:-build}/$lua/?.so" -o TAP ${BUSTED_ARGS:-} spec >"$tap" 2>&1
  rc=$?
  p=$(grep -Ec '^ok [0-9]+' "$tap" || true)
  s=$(grep -Ec '^ok [0-9]+.*# (SKIP|skip)' "$tap" || true)
  f=$(grep -Ec '^not ok [0-9]+' "$tap" || true)
  p=$((p - s))
  # Show failures and anything that is not a passing line.
  grep -Ev '^ok [0-9]+' "$tap" | grep -Ev '^1\.\.[0-9]+$' | head -200
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "busted exited $rc without a failing test: counting it as a failure"
    f=1
  fi
  echo "specs ($lua): $p passed, $f failed, $s skipped"
  rm -f "$tap"
  pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))

  vout=$(LUA_PATH='./lua/?.lua;./lua/?/init.lua;./spec/support/?.lua;;' LUA_CPATH="${BUILD:-build}/$lua/?.so;;" \
    "$lua" spec/support/run_vectors.lua spec/fixtures/vectors 2>&1)
  vrc=$?
  echo "$vout" | tail -n 60
  vp=$(echo "$vout" | sed -n 's/^vectors: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
  vf=$(echo "$vout" | sed -n 's/^vectors: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
  if [ -z "$vp" ]; then vp=0 vf=1; fi
  if [ "$vrc" -ne 0 ] && [ "$vf" -eq 0 ]; then vf=1; fi
  pass=$((pass + vp)) fail=$((fail + vf))
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
