#!/usr/bin/env bash
# For spec/openresty_nonblocking_spec.lua and bench/openresty.sh: while
# DOWNLOADS downloads of KEY and UPLOADS uploads of FILE run through
# /files/ of the example at BASE, GET /ok is probed every GAP seconds
# (0.02) on one keep-alive connection (spec/support/ngx_probe.py). Prints
# one "transfer <seconds> <http code>" line per transfer and one
# "probe <seconds> <http code> <start>" line per probe. Bounded: every curl
# has --max-time, the prober a limit; probing stops when the transfers are
# done.
# MODE "chunked" sends the uploads with Transfer-Encoding: chunked (no
# Content-Length: nginx spools them, then objstore uploads the file);
# "plain" (the default) with a Content-Length; "spool" sends them chunked
# to /spool, which only spools them (nginx's own share); "gateway" sends
# them with a Content-Length to /gateway/ (nginx's proxy_pass carries them
# to the store: the store's share of the load, no Lua, no hashing). With no transfers at all
# (0 0) it is the control run: PROBES (100) probes of an idle worker.
# NB_LIMIT_RATE (curl's --limit-rate, e.g. 64M) paces every upload: a
# client no faster than that, so the worker is not busy copying all the
# time and what the probe shows is the longest step it takes.
# Usage: ngx_nonblocking.sh BASE TOKEN KEY FILE DOWNLOADS UPLOADS [MODE [GAP [PROBES]]]
set -u
BASE=$1 TOKEN=$2 KEY=$3 FILE=$4 DOWNLOADS=$5 UPLOADS=$6 MODE=${7:-plain} GAP=${8:-0.02} PROBES=${9:-100}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
extra=()
URL=$BASE/files/nonblocking-up-
[ "$MODE" = chunked ] && extra=(-H "Transfer-Encoding: chunked")
# the same chunked bodies to /spool, which only lets nginx spool them
[ "$MODE" = spool ] && extra=(-H "Transfer-Encoding: chunked") && URL="$BASE/spool?"
# the same bodies with a Content-Length through /gateway/: proxy_pass
# streams them to the store, no Lua and no hashing in the worker
[ "$MODE" = gateway ] && URL="$BASE/gateway/nonblocking-gw-"
[ -n "${NB_LIMIT_RATE:-}" ] && extra+=(--limit-rate "$NB_LIMIT_RATE")
if [ "$DOWNLOADS" -eq 0 ] && [ "$UPLOADS" -eq 0 ]; then
  python3 "$(dirname "$0")/ngx_probe.py" "$BASE/ok" "$GAP" "$PROBES" 300
  exit 0
fi
# The prober first (so it runs before the first byte is sent), told to
# stop by a file once every transfer is done.
python3 "$(dirname "$0")/ngx_probe.py" "$BASE/ok" "$GAP" 0 400 "$OUT/done" >"$OUT/probes" &
prober=$!
sleep 0.3
pids=()
for i in $(seq "$DOWNLOADS"); do
  curl -s -o /dev/null --max-time 300 -H "Authorization: Bearer $TOKEN" -w 'transfer %{time_total} %{http_code}\n' \
    "$BASE/files/$KEY" >"$OUT/d$i" &
  pids+=($!)
done
for i in $(seq "$UPLOADS"); do
  curl -s -o /dev/null --max-time 300 -H "Authorization: Bearer $TOKEN" "${extra[@]}" -T "$FILE" \
    -w 'transfer %{time_total} %{http_code}\n' "$URL$i" >"$OUT/u$i" &
  pids+=($!)
done
wait "${pids[@]}"
touch "$OUT/done"
wait "$prober"
cat "$OUT/probes" "$OUT"/d* "$OUT"/u* 2>/dev/null
true
