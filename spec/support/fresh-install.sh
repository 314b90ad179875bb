#!/usr/bin/env bash
# The README's install command on a fresh Debian 12 (not run by CI: it
# downloads a base system and the build packages, a few minutes).
#   sudo bash spec/support/fresh-install.sh [ROOT]
# Makes a minimal Debian 12 with debootstrap in ROOT (default
# /tmp/objstore-fresh-root; kept for a re-run, remove it to start over),
# copies a clean `git archive` of HEAD into ROOT/root/objstore, runs the
# install line of the README's "Install" section there (as found in the
# README, exactly), then `objstore --version` and `objstore ls` against the
# S3 server of `spec/support/rgw.sh env` (the chroot shares the network).
# Needs root (debootstrap, chroot, mount) and apt access to the mirror of
# /etc/apt/sources.list*. Exit 0 only when every step passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${1:-/tmp/objstore-fresh-root}
MIRROR=${MIRROR:-$(grep -hoE '^(deb +|URIs: *)https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
  /etc/apt/sources.list.d/* 2>/dev/null | head -1 | grep -oE 'https?://[^ ]+' || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "fresh-install: needs root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%T)"; }
t0=$(date +%s)
if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  step "debootstrap --variant=minbase bookworm $ROOT $MIRROR"
  debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
    { tail -20 "$ROOT.debootstrap.log"; exit 1; }
fi
t1=$(date +%s)
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
trap 'umount "$ROOT/proc" 2>/dev/null || true' EXIT

step "a clean git archive of HEAD ($(git rev-parse --short HEAD)) into $ROOT/root/objstore"
rm -rf "$ROOT/root/objstore"
mkdir -p "$ROOT/root/objstore"
git archive HEAD | tar -x -C "$ROOT/root/objstore"

# The line of the README's Install section that installs (the first
# with `make install` in its sh blocks), its comment dropped.
line=$(awk '/^## Install/{s=1} s&&/^## /&&!/^## Install/{exit} s&&/^```sh/{b=1;next} b&&/^```/{b=0;next} b&&/make install/{print;exit}' README.md |
  sed 's/[[:space:]]*#.*$//')
[ -n "$line" ] || { echo "fresh-install: no install line in README.md's Install section" >&2; exit 1; }

# What any Debian 12 server has and minbase lacks: sudo (the README's line
# uses it) and the package lists.
step "machine setup: apt-get update, sudo"
chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends sudo >/dev/null'
t2=$(date +%s)

step "the README's install line: $line"
chroot "$ROOT" env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive \
  sh -c "cd /root/objstore && $line" >"$ROOT.install.log" 2>&1 || { tail -30 "$ROOT.install.log"; exit 1; }
tail -3 "$ROOT.install.log"
t3=$(date +%s)

step "objstore --version"
chroot "$ROOT" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root sh -c 'command -v objstore && objstore --version'

step "objstore ls against the test server"
eval "$(bash spec/support/rgw.sh env)"
bucket="fresh-install-$$"
chroot "$ROOT" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root \
  AWS_ACCESS_KEY_ID="$OBJSTORE_TEST_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$OBJSTORE_TEST_SECRET_KEY" \
  AWS_REGION="$OBJSTORE_TEST_REGION" E="$OBJSTORE_TEST_ENDPOINT" B="$bucket" sh -c '
    set -e
    echo "fresh machine" >/tmp/f.txt
    objstore --endpoint "$E" mb "s3://$B"
    objstore --endpoint "$E" -q cp /tmp/f.txt "s3://$B/f.txt"
    objstore --endpoint "$E" ls "s3://$B"
    test "$(objstore --endpoint "$E" cat "s3://$B/f.txt")" = "fresh machine"
    objstore --endpoint "$E" rb --force "s3://$B"'
t4=$(date +%s)
printf '\nfresh-install: ok. debootstrap %ds, setup %ds, README install line %ds, checks %ds, total %ds\n' \
  $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t4 - t3)) $((t4 - t0))
