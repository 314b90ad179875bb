-- S3 aws-chunked upload: seed signature (a header-mode SigV4 signature with
-- a STREAMING payload hash), then one chained signature per chunk, and the
-- aws-c-auth trailer signature.
local signer = require "objstore.signer"
local common = require "vectors.common"

local _M = { name = "chunked" }

function _M.claims(_, doc)
  local c = type(doc.cases) == "table" and doc.cases[1]
  return type(c) == "table" and c.mode == "header-streaming"
end

local function run_case(c, ctx)
  local cred, o, e = c.credentials, c.options or {}, c.expected
  local s = signer.new{
    algorithm = "aws4", access_key = cred.access_key, secret_key = cred.secret_key,
    session_token = cred.session_token, region = c.region, service = c.service,
    normalize_path = o.normalize_path, double_uri_encode = o.double_uri_encode,
  }
  local t = common.parse_time(c.datetime)
  local d, err = s:details({
    method = c.request.method, path = c.request.path, query = c.request.query,
    headers = common.headers_array(c.request.headers), payload_hash = o.payload_hash, time = t,
  }, "header")
  if not d then return ctx.fail(c.name, err) end
  local name = c.name .. " seed"
  if ctx.check(name, "canonical_request", d.canonical_request, e.seed_canonical_request)
      and ctx.check(name, "string_to_sign", d.string_to_sign, e.seed_string_to_sign)
      and ctx.check(name, "signature", d.signature, e.seed_signature)
      and ctx.check(name, "authorization", common.normalize_authorization(d.authorization),
        common.normalize_authorization(e.authorization)) then
    ctx.pass(name)
  end
  local prev = d.signature
  local wire = 0
  for i, chunk in ipairs(e.chunks or {}) do
    local data = string.rep(chunk.byte, chunk.size)
    local sig = s:chunk_signature(t, prev, data, { region = c.region, service = c.service })
    local cname = c.name .. " chunk " .. i
    if ctx.check(cname, "signature", sig, chunk.signature) then ctx.pass(cname) end
    prev = sig
    wire = wire + #string.format("%x", chunk.size) + #";chunk-signature=" + 64 + 2 + chunk.size + 2
  end
  if e.total_content_length then
    if ctx.check(c.name .. " wire length", "Content-Length", wire, e.total_content_length) then
      ctx.pass(c.name .. " wire length")
    end
  end
  local tr = c.trailer_extension
  if tr then
    local sig, terr = s:trailer_signature(t, tr.previous_signature, tr.trailing_headers,
      { region = c.region, service = c.service })
    if not sig then return ctx.fail(c.name .. " trailer", terr) end
    if ctx.check(c.name .. " trailer", "signature", sig, tr.expected_signature) then
      ctx.pass(c.name .. " trailer")
    end
  end
end

function _M.run(doc, ctx)
  for _, c in ipairs(doc.cases) do
    local ok, err = pcall(run_case, c, ctx)
    if not ok then ctx.fail(tostring(c.name), err) end
  end
end

return _M
