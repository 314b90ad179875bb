--- How credential providers reach the network: through the client they
-- serve (its transport: cosockets in OpenResty), as request records sent
-- through the pipeline of a small client of their own (objstore.sts's,
-- with an unsigned signer for metadata endpoints).
local errors = require "objstore.errors"
local sts = require "objstore.sts"
local request = require "objstore.engine.request"
local curl = require "objstore.transport.curl"
local core = require "objstore.core"
local url_mod = require "objstore.url"

local pairs = pairs
local uri_decode = core.encode.uri_decode

local _M = {}

--- The transport to use while `client` runs a request: the client's,
-- unless it cannot be entered again from its own callbacks (curl's, whose
-- session is busy while it runs): then nil, and the fetcher has a curl
-- transport of its own.
function _M.transport_for(client)
  local t = client and client.get_transport and client:get_transport()
  if t == nil or curl.is(t) then return nil end
  return t
end

--- An objstore.sts client for `opts`, kept in holder[slot] and made again
-- only when the transport to use changes.
function _M.sts(holder, slot, client, opts)
  local t = _M.transport_for(client)
  local cur = holder[slot]
  if cur and cur.transport == t then return cur.sts end
  if cur then cur.sts:close() end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.transport = t
  local s = sts.new(o, "new")
  holder[slot] = { sts = s, transport = t }
  return s
end

--- Splits "scheme://host[:port]/path?query" into the endpoint and the
-- request record fields (path as bucket/key, query pairs).
function _M.split_url(u)
  local p = url_mod.parse(u)
  if not p then return nil end
  local fields = {}
  local path = uri_decode(p.path)
  local bucket, key = path:match("^/([^/]+)/(.+)$")
  if bucket then
    fields.bucket, fields.key = bucket, key
  else
    fields.bucket = path:match("^/([^/]+)/?$")
  end
  if p.query and p.query ~= "" then fields.query = url_mod.decode_query(p.query) end
  return p.scheme .. "://" .. p.authority, fields
end

-- Metadata endpoints answer at once or not at all: short timeouts, one
-- retry, so a script or a handler off EC2/ECS is never held for long.
local METADATA = { timeout = 2, connect_timeout = 1, retry = { max_attempts = 2, base_delay = 0.05 } }

--- Sends an unsigned HTTP request to `url` through a client kept in
-- holder (per endpoint): the response { status, headers, body } (any
-- status), or nil, err. opts: method, headers, timeout, op.
function _M.http(holder, client, url, opts)
  local base, fields = _M.split_url(url)
  if not base then
    return nil, errors.new{ code = "CredentialsError", retryable = false,
      message = (opts.op or "fetch") .. ": '" .. url .. "' is not an http(s) URL" }
  end
  local s = _M.sts(holder, "http " .. base, client, { endpoint = base, addressing = "path",
    timeout = opts.timeout or METADATA.timeout, connect_timeout = opts.connect_timeout or METADATA.connect_timeout,
    retry = METADATA.retry })
  fields.op, fields.method, fields.headers = opts.op or "Fetch", opts.method or "GET", opts.headers
  local ok_status = {}
  for st = 300, 599 do ok_status[st] = true end
  -- Every answer is the caller's to read (IMDS's 401 without a token), but
  -- a 5xx or a connection failure is retried first.
  for st = 500, 599 do ok_status[st] = nil end
  fields.ok_status = ok_status
  return s.client:send(request.new(fields))
end

return _M
