#!/usr/bin/env bash
# Runs each libFuzzer target in $BUILD/fuzz for $FUZZ_SECONDS seconds (one at
# a time) on a fresh copy of its seed corpus spec/fuzz/<target>/, and prints
# executions, time and whether it crashed. Writes only under $BUILD/fuzz:
#   corpus/<target>/   the copy the run grows (reset each run)
#   artifacts/<target>/ crash, leak and timeout inputs
#   <target>.log       libFuzzer's output
# Exits non-zero if any target crashed. Usage: run-fuzz.sh [target...]
set -uo pipefail

BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
out="$BUILD/fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in csrc/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi

failed=0
printf '%-20s %12s %8s  %s\n' target executions seconds result
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  bin="$out/$t"
  [ -x "$bin" ] || { echo "run-fuzz: $bin not built (make fuzz builds it)" >&2; exit 2; }
  rm -rf "$out/corpus/$name" "$out/artifacts/$name"
  mkdir -p "$out/corpus/$name" "$out/artifacts/$name"
  cp spec/fuzz/"$name"/* "$out/corpus/$name/"
  start=$(date +%s)
  "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$name/" "$out/corpus/$name" >"$out/$name.log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$out/$name.log" | tail -1)
  artifact=$(ls "$out/artifacts/$name" 2>/dev/null | head -1)
  if [ $rc -ne 0 ] || [ -n "$artifact" ]; then
    failed=1
    result="CRASHED (rc $rc): $out/artifacts/$name/$artifact, log $out/$name.log"
  else
    result="no crash"
  fi
  printf '%-20s %12s %8s  %s\n' "$t" "${execs:-?}" "$secs" "$result"
done
exit $failed
