rockspec_format = "3.0"
package = "objstore"
version = "scm-1"
source = {
  url = "git+file:///objstore",
}
description = {
  summary = "Object storage for Lua: Amazon S3, S3-compatible stores and Alibaba Cloud OSS",
  detailed = [[
A thin C core (request signing, hashes and checksums, libcurl transfers,
libxml2 parsing) under pure-Lua modules for Lua 5.1-5.4 and LuaJIT.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
  "lua-cjson >= 2.1.0", -- cjson, cjson.safe
  "luafilesystem >= 1.6.0", -- lfs
}
external_dependencies = {
  -- Debian's curl header is multiarch (/usr/include/<triplet>/curl), which
  -- luarocks does not search: declare curl by its library only.
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/evp.h" },
  LIBXML2 = { header = "libxml2/libxml/parser.h" },
}
build = {
  type = "builtin",
  modules = {
    ["objstore.core"] = {
      sources = {
        "csrc/l_buffer.c",
        "csrc/l_compat.c",
        "csrc/l_core.c",
        "csrc/l_crc.c",
        "csrc/l_encode.c",
        "csrc/l_hash.c",
        "csrc/l_http.c",
        "csrc/l_mpu.c",
        "csrc/l_signer.c",
        "csrc/l_time.c",
        "csrc/l_xml.c",
        "csrc/os_buf.c",
        "csrc/os_ckpt.c",
        "csrc/os_crc.c",
        "csrc/os_encode.c",
        "csrc/os_hash.c",
        "csrc/os_http.c",
        "csrc/os_mpu.c",
        "csrc/os_sign_aws4.c",
        "csrc/os_sign_common.c",
        "csrc/os_sign_oss.c",
        "csrc/os_xml.c",
      },
      libraries = { "curl", "xml2", "crypto", "pthread" },
      incdirs = { "$(OPENSSL_INCDIR)", "$(LIBXML2_INCDIR)/libxml2" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(LIBXML2_LIBDIR)" },
      defines = { "_GNU_SOURCE" },
    },
    ["objstore.adapt"] = "lua/objstore/adapt.lua",
    ["objstore.checksum"] = "lua/objstore/checksum.lua",
    ["objstore.client"] = "lua/objstore/client.lua",
    ["objstore.clock"] = "lua/objstore/clock.lua",
    ["objstore.credentials"] = "lua/objstore/credentials.lua",
    ["objstore.credentials.fetch"] = "lua/objstore/credentials/fetch.lua",
    ["objstore.credentials.files"] = "lua/objstore/credentials/files.lua",
    ["objstore.credentials.metadata"] = "lua/objstore/credentials/metadata.lua",
    ["objstore.credentials.process"] = "lua/objstore/credentials/process.lua",
    ["objstore.credentials.refreshing"] = "lua/objstore/credentials/refreshing.lua",
    ["objstore.credentials.util"] = "lua/objstore/credentials/util.lua",
    ["objstore.credentials.web_identity"] = "lua/objstore/credentials/web_identity.lua",
    ["objstore.dialect"] = "lua/objstore/dialect.lua",
    ["objstore.endpoint"] = "lua/objstore/endpoint.lua",
    ["objstore.errors"] = "lua/objstore/errors.lua",
    ["objstore.failover"] = "lua/objstore/failover.lua",
    ["objstore.gateway"] = "lua/objstore/gateway.lua",
    ["objstore"] = "lua/objstore/init.lua",
    ["objstore.journal"] = "lua/objstore/journal.lua",
    ["objstore.log"] = "lua/objstore/log.lua",
    ["objstore.metrics"] = "lua/objstore/metrics.lua",
    ["objstore.mime"] = "lua/objstore/mime.lua",
    ["objstore.ngx"] = "lua/objstore/ngx.lua",
    ["objstore.ngx_credentials"] = "lua/objstore/ngx_credentials.lua",
    ["objstore.operations"] = "lua/objstore/operations.lua",
    ["objstore.ops.body"] = "lua/objstore/ops/body.lua",
    ["objstore.ops.bucket"] = "lua/objstore/ops/bucket.lua",
    ["objstore.ops.common"] = "lua/objstore/ops/common.lua",
    ["objstore.ops.flexsum"] = "lua/objstore/ops/flexsum.lua",
    ["objstore.ops.list"] = "lua/objstore/ops/list.lua",
    ["objstore.ops.multipart"] = "lua/objstore/ops/multipart.lua",
    ["objstore.ops.object"] = "lua/objstore/ops/object.lua",
    ["objstore.ops.sse"] = "lua/objstore/ops/sse.lua",
    ["objstore.pipeline"] = "lua/objstore/pipeline.lua",
    ["objstore.post_policy"] = "lua/objstore/post_policy.lua",
    ["objstore.presign"] = "lua/objstore/presign.lua",
    ["objstore.replicated"] = "lua/objstore/replicated.lua",
    ["objstore.request"] = "lua/objstore/request.lua",
    ["objstore.response"] = "lua/objstore/response.lua",
    ["objstore.retry"] = "lua/objstore/retry.lua",
    ["objstore.signer"] = "lua/objstore/signer.lua",
    ["objstore.sts"] = "lua/objstore/sts.lua",
    ["objstore.transfer.complete"] = "lua/objstore/transfer/complete.lua",
    ["objstore.transfer.download"] = "lua/objstore/transfer/download.lua",
    ["objstore.transfer.plan"] = "lua/objstore/transfer/plan.lua",
    ["objstore.transfer.progress"] = "lua/objstore/transfer/progress.lua",
    ["objstore.transfer.state"] = "lua/objstore/transfer/state.lua",
    ["objstore.transfer.stream"] = "lua/objstore/transfer/stream.lua",
    ["objstore.transfer.upload"] = "lua/objstore/transfer/upload.lua",
    ["objstore.transport.auto"] = "lua/objstore/transport/auto.lua",
    ["objstore.transport.curl"] = "lua/objstore/transport/curl.lua",
    ["objstore.transport"] = "lua/objstore/transport/init.lua",
    ["objstore.transport.ngx"] = "lua/objstore/transport/ngx.lua",
    ["objstore.xml"] = "lua/objstore/xml.lua",
  },
}
test = {
  type = "busted",
}
