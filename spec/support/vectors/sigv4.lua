-- AWS SigV4 cases: the aws-c-auth and classic botocore suites and the S3
-- documentation examples (header and query mode). Shape: cases[] with
-- mode, request{method,path,query,headers,body}, credentials, region,
-- service, datetime, options, expected{canonical_request, string_to_sign,
-- signature, authorization | presigned_url / presigned_path_and_query}.
local signer = require "objstore.engine.signer"
local common = require "vectors.common"

local _M = { name = "sigv4" }

function _M.claims(_, doc)
  local c = type(doc.cases) == "table" and doc.cases[1]
  return type(c) == "table" and (c.mode == "header" or c.mode == "query")
    and type(c.datetime) == "string" and type(c.request) == "table" and c.provider ~= "oss"
end

local function run_case(c, ctx)
  local name = c.name .. " [" .. c.mode .. "]"
  local o = c.options or {}
  local cred = c.credentials
  local s = signer.new{
    algorithm = "aws4", access_key = cred.access_key, secret_key = cred.secret_key,
    session_token = cred.session_token, region = c.region, service = c.service,
    normalize_path = o.normalize_path, double_uri_encode = o.double_uri_encode,
    -- sign_body: the suite's way of asking for the x-amz-content-sha256 header
    content_sha256_header = o.sign_body or false,
    unsigned_session_token = o.omit_session_token or false,
  }
  local req = {
    method = c.request.method, path = c.request.path, query = c.request.query,
    headers = common.headers_array(c.request.headers), body = c.request.body,
    time = common.parse_time(c.datetime), expires = o.expires_in,
    payload_hash = (c.mode == "query" and o.query_payload_hash) or o.payload_hash,
  }
  if c.mode == "header" and o.add_date_header == false then
    -- the request already carries its own x-amz-date; sign it as given
    req.add_date_header = false
    req.headers = req.headers -- unchanged
  end
  local d, err = s:details(req, c.mode)
  if not d then return ctx.fail(name, err) end
  local e = c.expected
  local ok = ctx.check(name, "canonical_request", d.canonical_request, e.canonical_request)
    and ctx.check(name, "string_to_sign", d.string_to_sign, e.string_to_sign)
    and ctx.check(name, "signature", d.signature, e.signature)
  if not ok then return end
  if c.mode == "header" then
    if e.authorization and common.normalize_authorization(d.authorization)
        ~= common.normalize_authorization(e.authorization) then
      return ctx.fail(name, "authorization differs\n  got:  " .. d.authorization .. "\n  want: " .. e.authorization)
    end
  else
    if e.presigned_url and not common.urls_equal(d.url, e.presigned_url) then
      return ctx.fail(name, "presigned_url differs\n  got:  " .. d.url .. "\n  want: " .. e.presigned_url)
    end
    if e.presigned_path_and_query and not common.urls_equal(d.path_and_query, e.presigned_path_and_query) then
      return ctx.fail(name, "presigned path differs\n  got:  " .. d.path_and_query
        .. "\n  want: " .. e.presigned_path_and_query)
    end
  end
  if not (e.canonical_request or e.signature or e.authorization or e.presigned_url) then
    return ctx.fail(name, "case has nothing to compare")
  end
  ctx.pass(name)
end

function _M.run(doc, ctx)
  for _, c in ipairs(doc.cases) do
    local ok, err = pcall(run_case, c, ctx)
    if not ok then ctx.fail(tostring(c.name), err) end
  end
end

return _M
