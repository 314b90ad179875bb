#!/usr/bin/env bash
# One multipart upload by plain curl: presigned UploadPart URLs sent by
# CONCURRENCY parallel `curl -T` of pre-split part files, then Complete.
#   bench/mpu_floor.sh <bucket> <key> <part_dir> <concurrency>
set -eu
bucket=$1 key=$2 dir=$3 conc=$4
list=$(mktemp)
trap 'rm -f "$list" "$list.id"' EXIT
lua5.4 bench/mpu_floor.lua start "$bucket" "$key" "$dir" >"$list" 2>"$list.id"
# shellcheck disable=SC2016
xargs -P "$conc" -L 1 sh -c 'curl -sf -o /dev/null -T "$0" "$1"' <"$list"
lua5.4 bench/mpu_floor.lua finish "$bucket" "$key" "$(cat "$list.id")"
