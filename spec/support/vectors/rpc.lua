-- Vector handler for Alibaba Cloud RPC signatures (spec/fixtures/vectors/aliyun-rpc/):
--   { rpc_signature_cases = { { name, method, secret, params = { name = value },
--     expected_canonical_query, expected_string_to_sign, expected_signature } } }
-- Each case is signed by objstore.sts.rpc_signature, the function the RPC
-- signer of objstore.sts uses.
local sts = require "objstore.sts"
local uri_encode = require("objstore.core").encode.uri_encode

local _M = { name = "rpc" }

function _M.claims(_, doc)
  return type(doc.rpc_signature_cases) == "table"
end

function _M.run(doc, ctx)
  for i, case in ipairs(doc.rpc_signature_cases) do
    local name = case.name or ("case " .. i)
    local params = {}
    for k, v in pairs(case.params) do params[#params + 1] = { uri_encode(k), uri_encode(tostring(v)) } end
    local canonical, sts_string, sig = sts.rpc_signature(case.method, params, case.secret)
    local ok = ctx.check(name, "canonical query", canonical, case.expected_canonical_query)
    ok = ctx.check(name, "string to sign", sts_string, case.expected_string_to_sign) and ok
    ok = ctx.check(name, "signature", sig, case.expected_signature) and ok
    if ok then ctx.pass(name) end
  end
end

return _M
