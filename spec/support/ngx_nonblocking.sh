#!/usr/bin/env bash
# For spec/openresty_nonblocking_spec.lua and bench/openresty.sh: while
# DOWNLOADS downloads of KEY and UPLOADS uploads of FILE run through
# /files/ of the example at BASE, GET /ok is probed every 20 ms. Prints one
# "transfer <seconds> <http code>" line per transfer and one
# "probe <seconds> <http code>" line per probe. Bounded: every curl has
# --max-time; probing stops when the transfers are done.
# Usage: ngx_nonblocking.sh BASE TOKEN KEY FILE DOWNLOADS UPLOADS
set -u
BASE=$1 TOKEN=$2 KEY=$3 FILE=$4 DOWNLOADS=$5 UPLOADS=$6
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
pids=()
for i in $(seq "$DOWNLOADS"); do
  curl -s -o /dev/null --max-time 300 -H "Authorization: Bearer $TOKEN" -w 'transfer %{time_total} %{http_code}\n' \
    "$BASE/files/$KEY" >"$OUT/d$i" &
  pids+=($!)
done
for i in $(seq "$UPLOADS"); do
  curl -s -o /dev/null --max-time 300 -H "Authorization: Bearer $TOKEN" -T "$FILE" \
    -w 'transfer %{time_total} %{http_code}\n' "$BASE/files/nonblocking-up-$i" >"$OUT/u$i" &
  pids+=($!)
done
running() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
sleep 0.2
while running; do
  curl -s -o /dev/null --max-time 10 -w 'probe %{time_total} %{http_code}\n' "$BASE/ok"
  sleep 0.02
done
wait
cat "$OUT"/d* "$OUT"/u*
