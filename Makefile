# objstore build, test and demo entry points. See README.md.
#   make build         Lua 5.4 module into build/lua5.4/
#   make build-all     every supported Lua into build/<lua>/
#   make test          deps + build + specs + vectors (Lua 5.4)
#   make matrix        specs + vectors on Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT
#   make vectors VECTORS=<dir>
#   make install       the rock (library + the `objstore` command) with luarocks for
#                      INSTALL_LUA (5.4) into /usr/local (ROCKTREE=<dir> for another tree)
#   make demo          deps + build + quickstart
#   make bench-sign    signing throughput next to boto3
#   make bench-transfer 1 GiB up/down next to awscli, rclone and curl
#   make bench-front   the S3 front next to proxy_pass and direct rgw (small GETs, 1 GiB)
#   make bench-sync    5,000 small + 20 large files, local -> rgw and a no-op re-run,
#                      next to rclone sync and aws s3 sync (requests counted by a proxy)
#   make asan          specs + vectors (Lua 5.4) on an ASan+UBSan build in build/asan/
#   make valgrind      the C-heavy specs under valgrind memcheck (build/valgrind/)
#   make docs          docs/reference.md from the sources (spec/support/gen_reference.lua)
#   make fuzz          libFuzzer targets (csrc/fuzz/) into build/fuzz/, each run
#                      FUZZ_SECONDS (default 60) on a copy of spec/fuzz/<target>/

LUAS      ?= lua5.1 lua5.2 lua5.3 lua5.4 luajit
LUA       ?= lua5.4
VECTORS   ?= spec/fixtures/vectors
CC        ?= cc
OPTFLAGS  ?= -O2
CWARNS    := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
             -Wcast-qual -Wundef -Wformat=2
DEP_CFLAGS := $(shell pkg-config --cflags libcurl libxml-2.0 libcrypto 2>/dev/null || echo -I/usr/include/libxml2)
DEP_LIBS   := $(shell pkg-config --libs libcurl libxml-2.0 libcrypto 2>/dev/null || echo -lcurl -lxml2 -lcrypto)
CFLAGS    ?= $(OPTFLAGS)
ALL_CFLAGS = -std=gnu99 -fPIC $(CWARNS) $(CFLAGS) $(DEP_CFLAGS)

lua_inc_lua5.1 := /usr/include/lua5.1
lua_inc_lua5.2 := /usr/include/lua5.2
lua_inc_lua5.3 := /usr/include/lua5.3
lua_inc_lua5.4 := /usr/include/lua5.4
lua_inc_luajit := /usr/include/luajit-2.1

# csrc/*.c only: the fuzz targets in csrc/fuzz/ are built by `make fuzz` alone.
CORE_SRC  := $(filter-out csrc/l_%.c,$(wildcard csrc/*.c))
BIND_SRC  := $(wildcard csrc/l_*.c)
HEADERS   := $(wildcard csrc/*.h)
BUILD     ?= build
SO        = $(BUILD)/$(1)/objstore/core.so

.PHONY: docs install build build-all test matrix vectors demo deps deps-test bench-sign lint format clean rockspec bench-transfer \
        openresty-demo bench-openresty bench-sync bench-front \
        fuzz fuzz-build asan valgrind

build: $(call SO,$(LUA))

build-all: $(foreach l,$(LUAS),$(call SO,$(l)))

# One rule per interpreter: the pure-C files are rebuilt per interpreter too,
# which costs a second and keeps each build directory self-contained.
define so_rule
$(call SO,$(1)): $(CORE_SRC) $(BIND_SRC) $(HEADERS)
	@mkdir -p $$(dir $$@)
	$(CC) $(ALL_CFLAGS) -I$(lua_inc_$(1)) -shared -o $$@ $(CORE_SRC) $(BIND_SRC) $(DEP_LIBS)
endef
$(foreach l,$(LUAS),$(eval $(call so_rule,$(l))))

# The rock into luarocks' tree for INSTALL_LUA: /usr/local by default (as root;
# `objstore` lands in /usr/local/bin), ROCKTREE=<dir> for another. Runtime
# dependencies (lua-cjson, luafilesystem) are the system's (Debian's
# lua-cjson and lua-filesystem packages, or luarocks install): --deps-mode=none.
# luarocks make compiles in the source directory: what it leaves is removed.
# On Debian/Ubuntu the packages it needs (compiler, headers, luarocks, the
# Lua, lua-cjson, lua-filesystem) are installed first when missing (apt).
INSTALL_LUA ?= 5.4
ROCKTREE    ?=
install:
	@if command -v apt-get >/dev/null 2>&1; then INSTALL_LUA=$(INSTALL_LUA) bash spec/support/install-deps.sh install; fi
	luarocks --lua-version=$(INSTALL_LUA) $(if $(ROCKTREE),--tree $(ROCKTREE)) make --deps-mode=none \
	  rockspec/objstore-scm-1.rockspec; rc=$$?; rm -f csrc/*.o objstore/core.so; rmdir objstore 2>/dev/null; exit $$rc

# The reference manual, generated from the declarations and their `---`
# comments; spec/reference_spec.lua fails when it is stale.
docs: build
	LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$(BUILD)/$(LUA)/?.so;;" $(LUA) spec/support/gen_reference.lua docs/reference.md

deps:
	@bash spec/support/install-deps.sh build

deps-test:
	@bash spec/support/install-deps.sh test

test: deps-test
	@$(MAKE) --no-print-directory build LUA=$(LUA)
	@BUILD=$(BUILD) bash spec/support/run-tests.sh $(LUA)

matrix: deps-test
	@$(MAKE) --no-print-directory build-all
	@BUILD=$(BUILD) bash spec/support/run-tests.sh $(LUAS)

vectors: build
	@LUA_PATH='./lua/?.lua;./lua/?/init.lua;./spec/support/?.lua;;' LUA_CPATH='$(BUILD)/$(LUA)/?.so;;' \
	  $(LUA) spec/support/run_vectors.lua $(VECTORS)

demo:
	@bash spec/support/install-deps.sh demo
	@$(MAKE) --no-print-directory build
	@bash examples/run-demo.sh

bench-sign: deps-test
	@$(MAKE) --no-print-directory build LUA=lua5.4
	@$(MAKE) --no-print-directory build LUA=luajit
	@BUILD=$(BUILD) bash bench/sign.sh

bench-transfer:
	@bash spec/support/install-deps.sh test
	@bash spec/support/install-deps.sh peers
	@$(MAKE) --no-print-directory build LUA=lua5.4
	@bash bench/transfer.sh

# The OpenResty example on 127.0.0.1:8088 against the local rgw, left
# running (bash examples/openresty/run.sh stop ends it); prints the token.
openresty-demo:
	@$(MAKE) --no-print-directory build LUA=luajit
	@bash examples/openresty/run.sh start

bench-openresty:
	@bash spec/support/install-deps.sh peers
	@$(MAKE) --no-print-directory build LUA=lua5.4
	@$(MAKE) --no-print-directory build LUA=luajit
	@bash bench/openresty.sh

bench-front:
	@bash spec/support/install-deps.sh peers
	@$(MAKE) --no-print-directory build LUA=lua5.4
	@$(MAKE) --no-print-directory build LUA=luajit
	@bash bench/front.sh

bench-sync:
	@bash spec/support/install-deps.sh test
	@bash spec/support/install-deps.sh peers
	@$(MAKE) --no-print-directory build LUA=lua5.4
	@bash bench/sync.sh

# Sanitizers: the core built with gcc's ASan+UBSan, loaded into the plain
# lua5.4 with the runtimes preloaded (run-tests.sh, OBJSTORE_SANITIZE=asan;
# spec/support/asan_unpreload.c keeps LD_PRELOAD from the programs specs start).
ASAN_BUILD   ?= build/asan
ASAN_CFLAGS  ?= -fsanitize=address,undefined -fno-omit-frame-pointer -g -O1
# valgrind: the specs that drive the C core hardest, on a normal -O2 build (+ -g).
VG_BUILD     ?= build/valgrind
VG_SPECS     ?= spec/checksum_spec.lua spec/xml_spec.lua spec/signer_spec.lua spec/http_spec.lua \
                spec/transport_contract_spec.lua spec/checkpoint_fuzz_spec.lua

asan: deps-test
	@$(MAKE) --no-print-directory build LUA=lua5.4 BUILD=$(ASAN_BUILD) CC=gcc OPTFLAGS="$(ASAN_CFLAGS)"
	@gcc -shared -fPIC -O1 -o $(ASAN_BUILD)/asan-unpreload.so spec/support/asan_unpreload.c
	@BUILD=$(ASAN_BUILD) OBJSTORE_SANITIZE=asan BUSTED_ARGS="$(BUSTED_ARGS) --exclude-tags=nginx,installed" \
	  bash spec/support/run-tests.sh lua5.4

valgrind: deps-test
	@$(MAKE) --no-print-directory build LUA=lua5.4 BUILD=$(VG_BUILD) OPTFLAGS="-O2 -g"
	@BUILD=$(VG_BUILD) OBJSTORE_SANITIZE=valgrind SPECS="$(VG_SPECS)" bash spec/support/run-tests.sh lua5.4

# Fuzzing: clang's libFuzzer with ASan and UBSan; the targets link the pure-C
# os_*.c files (never Lua). Only build/fuzz/ is written (see run-fuzz.sh).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_CFLAGS  ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC     := $(wildcard csrc/fuzz/fuzz_*.c)
FUZZ_BIN     := $(patsubst csrc/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

$(BUILD)/fuzz/%: csrc/fuzz/%.c $(CORE_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu99 $(CWARNS) $(FUZZ_CFLAGS) $(DEP_CFLAGS) -o $@ $< $(CORE_SRC) $(DEP_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz:
	@bash spec/support/install-deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) bash spec/support/run-fuzz.sh

rockspec:
	@lua5.4 spec/support/update-rockspec.lua

# Lua scripts in bin/ (a .lua name or a lua shebang), once there are any:
# luacheck skips extension-less files in a directory, so they are named.
# bin/objstore is a shell and Lua script at once (#!/bin/sh): named too.
LINT_BIN = $(sort $(wildcard bin/*.lua) bin/objstore $(shell grep -lsE '^\#!.*lua' $(wildcard bin/*) /dev/null))

lint:
	luacheck lua spec bench examples $(LINT_BIN)
	clang-format --dry-run --Werror csrc/*.c csrc/*.h csrc/fuzz/*.c

format:
	clang-format -i csrc/*.c csrc/*.h csrc/fuzz/*.c

clean:
	rm -rf build
