#!/usr/bin/env bash
# Installs the Debian packages objstore needs to build, test and demo.
# (tmux: the command line's progress as a terminal shows it; e2fsprogs:
# chattr for immutable directories; util-linux: setpriv to run as nobody.)
# Idempotent: only missing packages are installed, so a prepared machine pays ~1 s.
# Usage: install-deps.sh [install|build|demo|test|servers|peers|fuzz|all]   (default: test)
#   install: what `make install` needs for INSTALL_LUA (5.4 by default: 5.1, 5.2, 5.3, 5.4 or luajit);
#   build: compile and run; test: build + test tools + the S3 servers; peers: benchmark peers;
#   fuzz: build + clang with libFuzzer and the sanitizer runtimes (make fuzz)
set -euo pipefail

build_pkgs=(gcc make pkg-config libcurl4-openssl-dev libssl-dev libxml2-dev
  lua5.1 lua5.2 lua5.3 lua5.4 liblua5.1-0-dev liblua5.2-dev liblua5.3-dev liblua5.4-dev
  luajit2 libluajit2-5.1-dev lua-cjson lua-filesystem luarocks)
test_pkgs=(lua-busted lua-check clang-format python3-boto3 python3-prometheus-client awscli curl valgrind
  tmux e2fsprogs util-linux)
rgw_pkgs=(radosgw ceph-mon ceph-osd ceph-common uuid-runtime curl)
# nginx + its Lua module (which pulls lua-resty-core): the fault proxy and the
# ngx transport's contract run (spec/support/ngx_contract.sh, whose TLS cases
# make their certificates with openssl).
server_pkgs=("${rgw_pkgs[@]}"
  swift swift-proxy swift-object swift-container swift-account python3-swift memcached
  nginx libnginx-mod-http-lua openssl curl)
peer_pkgs=(awscli rclone hyperfine time wrk bc)
# Debian 12's clang 14: libFuzzer (libclang_rt.fuzzer) and the ASan/UBSan
# runtimes all come in libclang-rt-14-dev (libfuzzer-14-dev, a standalone
# copy of libFuzzer for other compilers, is not needed).
fuzz_pkgs=(clang clang-14 libclang-rt-14-dev)

# make install: a compiler, the headers, luarocks, one Lua and the runtime rocks.
INSTALL_LUA=${INSTALL_LUA:-5.4}
case "$INSTALL_LUA" in
  5.1) lua_pkgs=(lua5.1 liblua5.1-0-dev) ;;
  luajit) lua_pkgs=(luajit2 libluajit2-5.1-dev) ;;
  5.2 | 5.3 | 5.4) lua_pkgs=("lua$INSTALL_LUA" "liblua$INSTALL_LUA-dev") ;;
  *) echo "install-deps: INSTALL_LUA must be 5.1, 5.2, 5.3, 5.4 or luajit" >&2; exit 2 ;;
esac
install_pkgs=(gcc make pkg-config libc6-dev libcurl4-openssl-dev libssl-dev libxml2-dev "${lua_pkgs[@]}"
  lua-cjson lua-filesystem luarocks)

want=()
case "${1:-test}" in
  install) want=("${install_pkgs[@]}") ;;
  build) want=("${build_pkgs[@]}") ;;
  demo) want=("${build_pkgs[@]}" "${rgw_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${server_pkgs[@]}") ;;
  servers) want=("${server_pkgs[@]}") ;;
  peers) want=("${peer_pkgs[@]}") ;;
  fuzz) want=("${build_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
  all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${server_pkgs[@]}" "${peer_pkgs[@]}") ;;
  *) echo "usage: $0 [install|build|demo|test|servers|peers|fuzz|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The ali-oss comparison spec needs node and npm; a machine that has them
# from elsewhere keeps its own, others get Debian's.
if [ "${1:-test}" = test ] || [ "${1:-test}" = all ]; then
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
