/*
 * objstore.core: the one native module. Each native area is a table inside
 * it (core.hash, core.crc, core.encode, core.signer, core.xml) rather than a
 * luaopen_* symbol of its own, so the module also works from an all-in-one
 * loader that resolves only root names.
 */
#include "l_compat.h"

#include <openssl/crypto.h>

#include "os_version.h"

typedef int (*osl_opener)(lua_State *L);

static const struct {
  const char *name;
  osl_opener open;
} submodules[] = {
    {"hash", osl_open_hash},     {"crc", osl_open_crc},       {"encode", osl_open_encode},
    {"signer", osl_open_signer}, {"xml", osl_open_xml},       {"http", osl_open_http},
    {"time", osl_open_time},     {"buffer", osl_open_buffer}, {"mpu", osl_open_mpu},
    {"fs", osl_open_fs},         {"signal", osl_open_signal}, {NULL, NULL},
};

int luaopen_objstore_core(lua_State *L);

int luaopen_objstore_core(lua_State *L) {
  lua_newtable(L);
  for (int i = 0; submodules[i].name != NULL; i++) {
    submodules[i].open(L);
    lua_setfield(L, -2, submodules[i].name);
  }
  osl_push_error_mt(L);
  lua_setfield(L, -2, "error_mt");
  lua_pushstring(L, OS_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "openssl_version");
  return 1;
}
