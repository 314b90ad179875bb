/*
 * make asan preloads the ASan/UBSan runtimes into the (uninstrumented) Lua
 * interpreter with LD_PRELOAD, after them this library: its constructor runs
 * once the runtimes are loaded and removes LD_PRELOAD from the environment,
 * so the programs the specs start (sh, curl, python3, openssl, ...) run
 * without the sanitizers (curl under a preloaded ASan hangs).
 */
#include <stdlib.h>

__attribute__((constructor)) static void asan_unpreload(void) { unsetenv("LD_PRELOAD"); }
