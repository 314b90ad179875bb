#!/usr/bin/env bash
# Runs the busted specs and the external vectors on each Lua given
# (lua5.1 lua5.2 lua5.3 lua5.4 luajit), then prints one line CI can read:
#   N passed, N failed
# Busted's own summary is not such a line, so its TAP output is counted.
# Extra busted arguments can be passed in BUSTED_ARGS (e.g. "--exclude-tags=server"),
# the spec files or directories in SPECS (default: spec).
# OBJSTORE_SANITIZE=asan (make asan) preloads gcc's ASan and UBSan runtimes into
# the interpreter for a core built with them; OBJSTORE_SANITIZE=valgrind (make
# valgrind) runs the interpreter under valgrind memcheck; both run busted's
# script with the interpreter directly (no --lua re-exec) and the vectors too.
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

# run <lua> <args>: the interpreter, under the sanitizer asked for.
run=() san_args=()
case "${OBJSTORE_SANITIZE:-}" in
  "") ;;
  asan)
    # The last preload unsets LD_PRELOAD once the runtimes are in, so the
    # programs specs start (curl, python3, ...) run without them.
    run=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so) $PWD/${BUILD:-build}/asan-unpreload.so"
      ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
    # Left out: the crash scenarios (uploads, downloads, copy_large's
    # checkpoints: every name says "survives kill -9") and the upload_stream
    # RSS bound start a second lua5.4 on this build (spec/support/crash_upload.lua,
    # stream_rss.lua), which has no runtime preloaded (and ASan's shadow
    # memory would void an RSS bound anyway).
    # The command line's first-contact case copies this build's core into a
    # fresh checkout and runs it with a plain interpreter: left out too, as
    # is the installed command's run of the #options cases (a busted of its
    # own, on this build's core, without the runtimes preloaded) and the
    # require graph's load of every module in a fresh interpreter (the same).
    san_args=("--filter-out=survives kill %-9" "--filter-out=keeps RSS within"
      "--filter-out=runs from a checkout whatever" "--filter-out=through the installed command"
      "--filter-out=in a fresh interpreter") ;;
  valgrind)
    run=(valgrind -q --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1
      --show-leak-kinds=definite --num-callers=30 --suppressions=spec/support/valgrind.supp) ;;
  *) echo "unknown OBJSTORE_SANITIZE=$OBJSTORE_SANITIZE"; echo "0 passed, 1 failed"; exit 1 ;;
esac

pass=0 fail=0 skip=0
for lua in "$@"; do
  echo "== $lua"
  tap=$(mktemp)
  # shellcheck disable=SC2086
  if [ ${#run[@]} -eq 0 ]; then
    busted --lua="$lua" --cpath="${BUILD:-build}/$lua/?.so" -o TAP ${BUSTED_ARGS:-} ${SPECS:-spec} >"$tap" 2>&1
  else
    "${run[@]}" "$lua" "$(command -v busted)" --cpath="${BUILD:-build}/$lua/?.so" -o TAP ${san_args[@]+"${san_args[@]}"} ${BUSTED_ARGS:-} ${SPECS:-spec} >"$tap" 2>&1
  fi
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
    ${run[@]+"${run[@]}"} "$lua" spec/support/run_vectors.lua spec/fixtures/vectors 2>&1)
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
