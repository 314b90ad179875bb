-- Browser POST policy signatures: S3 SigV4 (cases[] with policy_json_text)
-- and OSS V1 (post_policy[] inside the OSS V1 file, run by the oss handler
-- through run_oss_policy below).
local signer = require "objstore.engine.signer"
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

-- The form fields that carry the signing scope (x-amz-credential,
-- x-amz-algorithm, x-amz-date) are what objstore's signer emits for the
-- same credentials, scope and time: taken from a URL objstore presigns at
-- the form's x-amz-date (else the policy date), whose X-Amz-Credential,
-- X-Amz-Algorithm and X-Amz-Date are those fields by the SigV4 POST rules.
local FORM_FROM_QUERY = { ["x-amz-credential"] = "X-Amz-Credential", ["x-amz-algorithm"] = "X-Amz-Algorithm",
  ["x-amz-date"] = "X-Amz-Date" }

local function check_form_fields(c, s, policy_time, fields, ctx)
  local name = c.name .. " credential"
  local t = policy_time
  if type(fields["x-amz-date"]) == "string" then t = common.parse_time(fields["x-amz-date"]) end
  local url, err = s:presign{ method = "POST", host = "policy.invalid", path = "/", time = t, expires = 1 }
  if not url then return ctx.fail(name, err) end
  local got = {}
  for k, v in (url:match("%?(.*)$") or ""):gmatch("([^&=]+)=([^&]*)") do
    got[core.encode.uri_decode(k)] = core.encode.uri_decode(v)
  end
  local compared = 0
  for field, param in pairs(FORM_FROM_QUERY) do
    if fields[field] ~= nil then
      compared = compared + 1
      if not ctx.check(name, field, got[param], fields[field]) then return end
    end
  end
  if compared == 0 then return ctx.fail(name, "form_fields has no field this handler checks") end
  ctx.pass(name)
end

function _M.run(doc, ctx)
  for _, c in ipairs(doc.cases) do
    local ok, err = pcall(function()
      local s = signer.new{ algorithm = "aws4", access_key = c.credentials.access_key,
        secret_key = c.credentials.secret_key, region = c.region, service = c.service }
      local t = common.parse_time(c.date)
      check_policy(c.name, s, c.policy_json_text, t, nil, c.expected, ctx)
      local f = c.expected.form_fields
      if type(f) == "table" and next(f) ~= nil then check_form_fields(c, s, t, f, ctx) end
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
