--- Gateway signing: an nginx handler signs, nginx's own proxy_pass
-- streams the body (the pattern of nginx's S3 gateway).
--
--   local p = assert(c:sign_for_proxy("GET", "bucket", key, { headers = ngx.req.get_headers() }))
--   -- p.url: where to proxy_pass; p.headers: the complete set of headers
--   -- the store must get (Host and the signature included); p.clear: every
--   -- other header of the caller, to be removed before forwarding.
--
-- An allow-list: only the caller's headers that mean the same to the
-- store and are safe to sign are passed through (range, conditionals and
-- the entity headers of an upload), signed; every other header the caller
-- sent is in `clear` — an Authorization, x-amz-* or x-oss-* header would
-- break the signature or smuggle options (an ACL, a copy source,
-- server-side encryption), anything else is not the store's business.
-- Only Host and the message framing nginx rewrites itself (Content-Length,
-- Transfer-Encoding, Expect, Connection) are left alone. `opts.headers` must
-- be the caller's complete set: a handler that read it with a limit
-- (ngx.req.get_headers(n)) refuses the request when the read was truncated,
-- since a header past the limit would be neither signed nor cleared. The request is
-- a request record signed by the pipeline's one signing step, for the
-- healthiest endpoint, with an UNSIGNED-PAYLOAD body: nginx streams it.
local request = require "objstore.engine.request"
local errors = require "objstore.errors"
local common = require "objstore.ops.common"
local dialects = require "objstore.engine.dialect"
local url_mod = require "objstore.url"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local concat, sort = table.concat, table.sort

local _M = {}

-- The providers' header prefixes (x-amz-, x-oss-): the store's own headers.
local STORE_PREFIXES = {}
for i, name in ipairs(dialects.names) do STORE_PREFIXES[i] = dialects[name].prefix end

local function store_header(lname)
  for _, p in ipairs(STORE_PREFIXES) do
    if lname:sub(1, #p) == p then return true end
  end
  return false
end

local METHODS = { GET = true, HEAD = true, PUT = true }

-- The caller's headers that go to the store (and into the signature) as
-- they came. Content-Length is not among them: nginx sends its own for
-- the body it forwards, and it need not be signed.
local PASSED = {
  ["range"] = "Range", ["if-match"] = "If-Match", ["if-none-match"] = "If-None-Match",
  ["if-modified-since"] = "If-Modified-Since", ["if-unmodified-since"] = "If-Unmodified-Since",
  ["content-type"] = "Content-Type", ["content-md5"] = "Content-MD5", ["content-encoding"] = "Content-Encoding",
  ["content-disposition"] = "Content-Disposition", ["content-language"] = "Content-Language",
  ["cache-control"] = "Cache-Control", ["expires"] = "Expires",
}

-- Host and the framing of the message, which nginx's proxy module sets
-- itself for the request it forwards (the caller's are never copied): not
-- cleared, since clearing them from the incoming request would change how
-- nginx reads its body.
local FRAMING = { host = true, ["content-length"] = true, ["transfer-encoding"] = true, expect = true,
  connection = true }

local OPTS = { headers = true, extra_headers = true, version_id = true, time = true }

--- sign_for_proxy(client, method, bucket, key, opts) -> { url, headers, clear } | nil, err
-- opts: headers (the incoming request's, e.g. ngx.req.get_headers(); a
-- repeated header as a list of values), extra_headers (the handler's own,
-- signed as given: x-amz-meta-*, a storage class …), version_id, time
-- (epoch seconds; default the client's clock).
function _M.sign_for_proxy(client, method, bucket, key, opts)
  local F = "sign_for_proxy"
  method = common.method(F, 1, method, METHODS, "GET, HEAD or PUT")
  common.bucket(client, F, 2, bucket)
  common.key(F, 3, key)
  opts = common.opts(F, 4, opts, OPTS)
  local headers, clear = {}, {}
  local incoming = opts.headers or {}
  if type(incoming) ~= "table" then common.misuse(F, 4, "opts.headers", "must be a table, " .. errors.got(incoming)) end
  local others = {}
  for name, value in pairs(incoming) do
    if type(name) == "string" then
      local lname = name:lower()
      if type(value) == "table" then value = concat(value, ", ") end
      local canonical = PASSED[lname]
      if canonical and type(value) == "string" and not value:find("[%z\r\n]") then
        headers[canonical] = value
      elseif not FRAMING[lname] then
        others[#others + 1] = name
      end
    end
  end
  common.extra_headers(F, 4, opts.extra_headers, headers)
  local req = request.new{ op = "SignForProxy", method = method, bucket = bucket, key = key,
    query = opts.version_id and { versionId = opts.version_id } or nil, headers = headers,
    payload_hash = "UNSIGNED-PAYLOAD" }
  local signed, err = client:sign_at(req, opts.time)
  if not signed then return nil, err end
  local out = signed.headers
  out.Host = url_mod.parse(signed.url).authority
  -- Every header of the caller not passed through is cleared (a name the
  -- signature uses too, Authorization say, is then set to the signed value).
  for i = 1, #others do clear[i] = others[i] end
  sort(clear)
  return { url = signed.url, headers = out, clear = clear }
end

--- The store's headers among `headers` (a response's, name -> value) that
-- a gateway hides from its caller: every x-amz-* and x-oss-* one (request
-- ids, server-side encryption, version ids, replication state …) unless
-- `keep` lists it: exact names, or prefixes ending in "*" ("x-amz-meta-*").
-- Returns the names as spelt in `headers`, sorted.
function _M.hidden_response_headers(headers, keep)
  if type(headers) ~= "table" then
    errors.argument("client.hidden_response_headers", 1, "headers", "must be a table, " .. errors.got(headers))
  end
  if keep ~= nil and type(keep) ~= "table" then
    errors.argument("client.hidden_response_headers", 2, "keep", "must be a list of names, " .. errors.got(keep))
  end
  local exact, prefixes = {}, {}
  for _, k in ipairs(keep or {}) do
    local lk = tostring(k):lower()
    if lk:sub(-1) == "*" then prefixes[#prefixes + 1] = lk:sub(1, -2) else exact[lk] = true end
  end
  local out = {}
  for name in pairs(headers) do
    local lname = type(name) == "string" and name:lower()
    if lname and store_header(lname) and not exact[lname] then
      local kept = false
      for _, p in ipairs(prefixes) do
        if lname:sub(1, #p) == p then kept = true end
      end
      if not kept then out[#out + 1] = name end
    end
  end
  sort(out)
  return out
end

return _M
