-- Browser POST policy signatures: S3 SigV4 (cases[] with policy_json_text)
-- and OSS V1 (post_policy[] inside the OSS V1 file, run by the oss handler
-- through run_oss_policy below).
local signer = require "objstore.signer"
local core = require "objstore.core"
local common = require "vectors.common"

local _M = { name = "post_policy" }

function _M.claims(_, doc)
  local c = type(doc.cases) == "table" and doc.cases[1]
  return type(c) == "table" and c.policy_json_text ~= nil
end

local function check_policy(name, s, policy_text, t, opts, e, ctx)
  local b64 = core.encode.base64_encode(policy_text)
  if not ctx.check(name, "policy_base64", b64, e.policy_base64) then return end
  local sig, err = s:policy_signature(b64, t, opts)
  if not sig then return ctx.fail(name, err) end
  if ctx.check(name, "signature", sig, e.signature) then ctx.pass(name) end
end

function _M.run(doc, ctx)
  for _, c in ipairs(doc.cases) do
    local ok, err = pcall(function()
      local s = signer.new{ algorithm = "aws4", access_key = c.credentials.access_key,
        secret_key = c.credentials.secret_key, region = c.region, service = c.service }
      local t = common.parse_time(c.date)
      check_policy(c.name, s, c.policy_json_text, t, nil, c.expected, ctx)
      local f = c.expected.form_fields
      if f and f["x-amz-credential"] then
        local want = c.credentials.access_key .. "/" .. c.date .. "/" .. c.region .. "/" .. c.service .. "/aws4_request"
        if ctx.check(c.name .. " credential", "x-amz-credential", want, f["x-amz-credential"]) then
          ctx.pass(c.name .. " credential")
        end
      end
    end)
    if not ok then ctx.fail(tostring(c.name), err) end
  end
end

--- OSS post policies: signature = base64(HMAC-SHA1(secret, policy_base64)) (V1)
-- or the V4 derived-key HMAC.
function _M.run_oss_policy(p, ctx)
  local version = p.version or "v1"
  local s = signer.new{ algorithm = version == "v4" and "oss4" or "oss1",
    access_key = p.credentials.access_key, secret_key = p.credentials.secret_key, region = p.region }
  local t = p.signing_time_unix or (p.date and common.parse_time(p.date)) or 0
  check_policy(p.name, s, p.policy_json_compact or p.policy_json_text, t, nil, p.expected, ctx)
end

return _M
