-- Alibaba OSS V1 and V4 cases (from the Go/Python SDK v2 signer tests and
-- the OSS docs). Shape: { rules, cases[] with provider = "oss" } and, for
-- V1, post_policy[].
local signer = require "objstore.engine.signer"
local common = require "vectors.common"
local post_policy = require "vectors.post_policy"

local _M = { name = "oss" }

function _M.claims(_, doc)
  local c = type(doc.cases) == "table" and doc.cases[1]
  return type(c) == "table" and c.provider == "oss" and c.mode ~= nil and c.version ~= nil
end

local function val(v, ctx)
  if v == ctx.null then return nil end
  return v
end

local function list(v, ctx)
  v = val(v, ctx)
  if v == nil then return nil end
  local out = {}
  for i, x in ipairs(v) do out[i] = x end
  return out
end

local function query_params(u)
  local q = u:match("%?(.*)$") or u
  local out = {}
  for part in q:gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=?(.*)$")
    out[k] = v
  end
  return out
end

local function run_case(c, ctx)
  local name = c.name
  local v4 = c.version == "v4"
  local cred = c.credentials
  local s = signer.new{
    algorithm = v4 and "oss4" or "oss1", access_key = cred.access_key, secret_key = cred.secret_key,
    session_token = val(cred.session_token, ctx), region = val(c.region, ctx), service = val(c.product, ctx),
  }
  local rq = c.request
  local t = val(c.signing_time_unix, ctx)
  local expires
  if c.mode == "query" then
    local exp_at = val(c.expires_unix, ctx)
    if not t then t = exp_at - 60 end -- V1 URL signatures sign only the expiry instant
    expires = exp_at - t
  end
  local req = {
    method = rq.method, url = val(rq.url, ctx), path = rq.path ~= "" and val(rq.path, ctx) or nil,
    query = rq.query ~= "" and val(rq.query, ctx) or nil,
    headers = common.headers_array(rq.headers),
    bucket = val(c.bucket, ctx), key = val(c.key, ctx),
    sub_resources = list(c.sub_resources, ctx), additional_headers = list(c.additional_headers, ctx),
    time = t or 0, expires = expires,
  }
  local d, err = s:details(req, c.mode)
  if not d then return ctx.fail(name, err) end
  local e, derived = c.expected, val(c.derived, ctx) or {}
  local ok = ctx.check(name, "string_to_sign", d.string_to_sign, val(e.string_to_sign, ctx) or derived.string_to_sign)
    and ctx.check(name, "canonical_request", d.canonical_request, derived.canonical_request)
    and ctx.check(name, "signature", d.signature, e.signature)
  if not ok then return end
  if c.mode == "header" then
    if not ctx.check(name, "authorization", d.authorization, val(e.authorization, ctx)) then return end
  else
    if e.presigned_url and not common.urls_equal(d.url, e.presigned_url) then
      return ctx.fail(name, "presigned_url differs\n  got:  " .. d.url .. "\n  want: " .. e.presigned_url)
    end
    local got = query_params(d.url)
    if e.query_string then
      for k, v in pairs(query_params(e.query_string)) do
        if not ctx.check(name, "query " .. k, got[k], v) then return end
      end
    end
    if e.signature_in_url and not ctx.check(name, "Signature in URL", got.Signature, e.signature_in_url) then
      return
    end
    if e.response_content_disposition_in_url and not ctx.check(name, "response-content-disposition",
        got["response-content-disposition"], e.response_content_disposition_in_url) then
      return
    end
    for _, k in ipairs{ "x-oss-signature-version", "x-oss-date", "x-oss-expires", "x-oss-credential",
        "x-oss-additional-headers" } do
      local want = e[k]
      if want ~= nil then
        local g = got[k] and require("objstore.core").encode.uri_decode(got[k])
        if not ctx.check(name, k, g, val(want, ctx)) then return end
        if want == ctx.null and got[k] ~= nil then return ctx.fail(name, k .. " should be absent") end
      end
    end
  end
  ctx.pass(name)
end

function _M.run(doc, ctx)
  for _, c in ipairs(doc.cases) do
    local ok, err = pcall(run_case, c, ctx)
    if not ok then ctx.fail(tostring(c.name), err) end
  end
  for _, p in ipairs(doc.post_policy or {}) do
    local ok, err = pcall(post_policy.run_oss_policy, p, ctx)
    if not ok then ctx.fail(tostring(p.name), err) end
  end
end

return _M
