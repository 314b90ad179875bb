#!/usr/bin/env bash
# make bench-transfer: 1 GiB upload and download against the local radosgw
# for objstore, aws s3 cp (awscli), rclone copyto and curl with a presigned
# URL (the single-stream floor), in one run; for uploads also the server's
# multipart floor (the same part size and concurrency as parallel `curl -T`
# of presigned UploadPart URLs, then Complete), objstore with a checkpoint
# (and the checkpoint bytes written per part), and a dry run of the state
# and checkpoint of a 10,000-part upload (RSS and bytes per part). Prints wall time, client CPU
# (user+sys) and peak RSS, each the median of RUNS runs (default 3), and the
# ratios to awscli. The machine's 2 cores are shared with the server, so
# client CPU saved is throughput gained.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SIZE_MIB=${SIZE_MIB:-1024}
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/lua5.4/?.so;;'
bash spec/support/rgw.sh start >&2
eval "$(bash spec/support/rgw.sh env)"
unset AWS_CA_BUNDLE # rclone refuses to start with it set, even over http
work=$(mktemp -d /tmp/objstore-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/src.bin
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$src"
bucket=bench-$(date +%s)
mkdir "$work/parts"
split -b 8M -a 5 -d "$src" "$work/parts/part"
export CKPT_STATS=$work/ckpt-stats
lua5.4 bench/admin.lua create "$bucket"

export AWS_ACCESS_KEY_ID=$OBJSTORE_TEST_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$OBJSTORE_TEST_SECRET_KEY
export AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export RCLONE_CONFIG_RGW_TYPE=s3 RCLONE_CONFIG_RGW_PROVIDER=Ceph RCLONE_CONFIG_RGW_ENDPOINT=$OBJSTORE_TEST_ENDPOINT
export RCLONE_CONFIG_RGW_ACCESS_KEY_ID=$OBJSTORE_TEST_ACCESS_KEY
export RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY=$OBJSTORE_TEST_SECRET_KEY RCLONE_CONFIG_RGW_FORCE_PATH_STYLE=true
presign() { # method key -> URL
  lua5.4 bench/admin.lua presign "$bucket" "$1" "$2"
}

# measure NAME DIRECTION CMD... : appends "wall cpu rss_kib" to $work/NAME.DIRECTION
measure() {
  local name=$1 dir=$2
  shift 2
  sync
  /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || {
    echo "$name $dir failed:" >&2
    tail -5 "$work/err" >&2
    return 1
  }
  awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$work/t" >>"$work/$name.$dir"
}

for run in $(seq "$RUNS"); do
  echo "run $run/$RUNS" >&2
  measure objstore up lua5.4 bench/transfer.lua up "$bucket" objstore.bin "$src" 4 8
  measure objstore-noverify up lua5.4 bench/transfer.lua up "$bucket" objstore-nv.bin "$src" 4 8 noverify
  measure objstore-checkpoint up lua5.4 bench/transfer.lua up "$bucket" objstore-cp.bin "$src" 4 8 checkpoint
  measure curl-multipart up bash bench/mpu_floor.sh "$bucket" floor.bin "$work/parts" 4
  measure awscli up /usr/bin/aws --endpoint-url "$OBJSTORE_TEST_ENDPOINT" s3 cp "$src" "s3://$bucket/aws.bin"
  measure rclone up rclone copyto --ignore-times "$src" "rgw:$bucket/rclone.bin"
  url=$(presign PUT curl.bin)
  measure curl up curl -sf -T "$src" "$url"

  rm -f "$work/dl"*
  measure objstore down lua5.4 bench/transfer.lua down "$bucket" objstore.bin "$work/dl-o" 8 8
  measure objstore-noverify down lua5.4 bench/transfer.lua down "$bucket" objstore.bin "$work/dl-on" 8 8 noverify
  measure awscli down /usr/bin/aws --endpoint-url "$OBJSTORE_TEST_ENDPOINT" s3 cp "s3://$bucket/aws.bin" "$work/dl-a"
  measure rclone down rclone copyto "rgw:$bucket/rclone.bin" "$work/dl-r"
  url=$(presign GET curl.bin)
  measure curl down curl -sf -o "$work/dl-c" "$url"
  cmp -s "$src" "$work/dl-o" || { echo "objstore download differs from the source" >&2; exit 1; }
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$2" '{print $c}' "$work/$1" | median; }
printf '\n%s MiB object, medians of %s runs, client and radosgw on the same 2 cores\n' "$SIZE_MIB" "$RUNS"
for dir in up down; do
  aw=$(col "awscli.$dir" 1)
  ac=$(col "awscli.$dir" 2)
  printf '\n%-8s %-20s %9s %9s %11s %12s %12s\n' "$dir" client "wall s" "CPU s" "peak RSS" "wall/awscli" "CPU/awscli"
  names="objstore objstore-noverify awscli rclone curl"
  [ "$dir" = up ] && names="objstore objstore-noverify objstore-checkpoint awscli rclone curl curl-multipart"
  for name in $names; do
    w=$(col "$name.$dir" 1)
    cpu=$(col "$name.$dir" 2)
    rss=$(col "$name.$dir" 3)
    printf '%-8s %-20s %9s %9s %8d MiB %12.2f %12.2f\n' "" "$name" "$w" "$cpu" $((rss / 1024)) \
      "$(awk -v a="$w" -v b="$aw" 'BEGIN{print a/b}')" "$(awk -v a="$cpu" -v b="$ac" 'BEGIN{print a/b}')"
  done
done
fw=$(col "curl-multipart.up" 1)
printf '\nupload wall / multipart floor (curl -T of the same 8 MiB parts, 4 at once): objstore %.2f, with checkpoint %.2f\n' \
  "$(awk -v a="$(col objstore.up 1)" -v b="$fw" 'BEGIN{print a/b}')" \
  "$(awk -v a="$(col objstore-checkpoint.up 1)" -v b="$fw" 'BEGIN{print a/b}')"
printf 'checkpoint bytes written per part (%s MiB upload, median): %s\n' "$SIZE_MIB" "$(median <"$CKPT_STATS")"
printf '10,000-part dry run of the state and checkpoint: '
lua5.4 bench/mpu_state.lua "$work/dry.cp" 10000
lua5.4 bench/admin.lua cleanup "$bucket" >/dev/null 2>&1 || true
