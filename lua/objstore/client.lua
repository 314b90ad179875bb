--- The client: options, credentials, endpoints, transport, and one method
-- per operation of objstore.operations. Every method describes its
-- requests as request records (objstore.request) and sends them through
-- the one pipeline (objstore.pipeline), by the engine the client is built
-- on (objstore.engine: endpoints, transport, signers, credentials cache,
-- retry policy, clock, observers).
--
--   local Client = require "objstore.client"
--   local c = Client.new{ endpoint = "http://127.0.0.1:7480", access_key = ak, secret_key = sk }
--   c:put_object("bucket", "key", "hello")
--
-- The request API, for transfers, sync and anything built on a client:
--   c:build_request(name, ...) -> record   the request operation `name` makes
--   c:send(record)             -> result | nil, err
--   c:run{ concurrency, next, done }        many at once, each retried alone
--   c:prepare(name, ...)       -> the signed transport request, not sent
--   c:presign(method, bucket, key, opts) -> URL
--   c:sign_for_proxy(method, bucket, key, opts) -> { url, headers, clear }
--   c:presigned_post(bucket, key_or_prefix, opts) -> { url, fields }
local Engine = require "objstore.engine"
local errors = require "objstore.errors"
local credentials = require "objstore.credentials"
local gateway = require "objstore.gateway"
local presign = require "objstore.presign"
local post_policy = require "objstore.post_policy"
local operations = require "objstore.operations"
local core = require "objstore.core"

local pairs, setmetatable, select = pairs, setmetatable, select

local Client = setmetatable({ _VERSION = core._VERSION }, { __index = Engine })
Client.__index = Client

--- Creates a client. Raises on misuse; never does I/O except reading the
-- shared AWS config files when region/endpoint/credentials are not given.
function Client.new(opts)
  opts = Engine.check(opts)
  local default_provider
  if not (opts.access_key or opts.secret_key) and opts.credentials == nil then
    default_provider = credentials.default_chain(opts.provider or "s3", { profile = opts.profile, env = opts.env })
  end
  return Engine.init(setmetatable({}, Client), opts, default_provider)
end

--- The request record operation `name` would send for these arguments.
function Client:build_request(name, ...)
  local entry = operations[name]
  if not entry or not entry.build then
    errors.argument("client.build_request", 1, "name", "'" .. tostring(name) .. "' is not an operation of one request")
  end
  return entry.build(self, ...)
end

--- Returns what would be sent for an operation, without sending it: the
-- transport request { method, url, headers, body, ... } signed at the
-- client's current time, for the first endpoint.
function Client:prepare(name, ...)
  local entry = operations[name]
  if type(name) ~= "string" or not entry or not entry.build then
    errors.argument("client.prepare", 1, "name", "'" .. tostring(name) .. "' is not an operation of one request")
  end
  local req = entry.build(self, ...)
  if req.error then return nil, req.error end
  return self:sign(req)
end

--- A presigned URL for (method, bucket, key); see objstore.presign.
function Client:presign(method, bucket, key, opts)
  return presign.presign(self, method, bucket, key, opts)
end

--- The URL and fields of a browser upload form; see objstore.post_policy.
function Client:presigned_post(bucket, key_or_prefix, opts)
  return post_policy.presigned_post(self, bucket, key_or_prefix, opts)
end

--- Signs a GET, HEAD or PUT for a proxy to send (objstore.gateway).
function Client:sign_for_proxy(method, bucket, key, opts)
  return gateway.sign_for_proxy(self, method, bucket, key, opts)
end

--- The store headers of a response a gateway hides (objstore.gateway).
function Client:hidden_response_headers(headers, keep) -- luacheck: no unused args
  return gateway.hidden_response_headers(headers, keep)
end

Client.__tostring = function(self)
  return "objstore.client(" .. self.provider .. ", " .. self.endpoint.url .. ")"
end

-- One method per operation.
for name, entry in pairs(operations) do
  local call = entry.call
  if not call then
    local build = entry.build
    call = function(self, ...)
      return self:send(build(self, ...))
    end
  end
  Client[name] = function(self, ...)
    return call(self:call_view(name, select("#", ...), ...))
  end
end

return Client
