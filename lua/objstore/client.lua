--- The client: options, credentials, endpoints, transport, and one method
-- per operation of objstore.operations. Every method describes its
-- requests as request records (objstore.engine.request) and sends them through
-- the one pipeline (objstore.engine.pipeline), by the engine the client is built
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
local sync = require "objstore.sync"
local core = require "objstore.core"

local pairs, setmetatable, select = pairs, setmetatable, select

local Client = setmetatable({ _VERSION = core._VERSION }, { __index = Engine })
Client.__index = Client

--- new(opts) -> client
-- Creates a client, as objstore.new (see there for the options). Raises on
-- misuse; never does I/O except reading the shared AWS config files when
-- region/endpoint/credentials are not given.
function Client.new(opts)
  opts = Engine.check(opts)
  local default_provider
  if not (opts.access_key or opts.secret_key) and opts.credentials == nil then
    default_provider = credentials.default_chain(opts.provider or "s3", { profile = opts.profile, env = opts.env })
  end
  return Engine.init(setmetatable({}, Client), opts, default_provider)
end

--- build_request(name, ...) -> record
-- The request record (objstore.engine.request) operation `name` would send for
-- these arguments (an operation of one request); give it to send or run.
-- Raises for a name that is not such an operation.
function Client:build_request(name, ...)
  local entry = operations[name]
  if not entry or not entry.build then
    errors.argument("client.build_request", 1, "name", "'" .. tostring(name) .. "' is not an operation of one request")
  end
  return entry.build(self, ...)
end

--- prepare(name, ...) -> { method, url, headers, body, ... } | nil, err
-- What operation `name` would send for these arguments, without sending
-- it: the transport request signed at the client's current time, for the
-- first endpoint.
function Client:prepare(name, ...)
  local entry = operations[name]
  if type(name) ~= "string" or not entry or not entry.build then
    errors.argument("client.prepare", 1, "name", "'" .. tostring(name) .. "' is not an operation of one request")
  end
  local req = entry.build(self, ...)
  if req.error then return nil, req.error end
  return self:sign(req)
end

--- presign(method, bucket, key, opts) -> url | nil, err
-- A URL anyone can use with a plain HTTP client until it expires, for
-- "GET", "PUT", "HEAD" or "DELETE", in the client's signature (S3 SigV4,
-- OSS V1 or V4), addressing and credentials (a session token goes into the
-- URL; the secret never does). Encryption options become signed headers:
-- whoever uses the URL must send them (an SSE-C key never goes into a URL).
-- errors: CredentialsError (no credentials could be had), SigningError.
-- opts.expires_in: seconds the URL is valid, a whole number from 1 to 604800
--   (7 days; default 3600).
-- opts.response: the headers the store answers a GET with: { content_type,
--   content_disposition, content_encoding, content_language,
--   cache_control, expires }.
-- opts.content_type: the Content-Type the upload must send (signed).
-- opts.content_md5: the Content-MD5 the upload must send (signed).
-- opts.upload_id: with part_number, a PUT for UploadPart of this upload.
-- opts.part_number: the part of upload_id (1-10000).
-- opts.version_id: the version to read or delete.
-- opts.query: more query parameters to sign, { name = value }.
-- opts.headers: more headers to sign; whoever uses the URL must send them.
-- opts.time: the signing time, epoch seconds (default the client's clock).
-- opts.copy_source_sse_customer_key: the SSE-C key of a copy's source
--   (as signed headers).
function Client:presign(method, bucket, key, opts)
  return presign.presign(self, method, bucket, key, opts)
end

--- presigned_post(bucket, key_or_prefix, opts) -> { url, fields } | nil, err
-- An HTML form that POSTs a file straight to the store (S3 SigV4 POST
-- policy; OSS PostObject policy, V1 or V4): every field a hidden input, the
-- file input last. key_or_prefix: a key, a key with ${filename}, or a
-- prefix ending in "/". Every field is also a condition of the policy.
-- opts.expires_in: seconds the form is valid (1 to 604800, default 3600).
-- opts.conditions: { content_length_range = { min, max }, starts_with =
--   { field = prefix }, acl, content_type, metadata = {...},
--   success_action_status, success_action_redirect, tagging (S3) }.
-- opts.callback: OSS upload callback { url, body, body_type, host }.
-- opts.callback_vars: OSS callback variables { name = value } (x:name fields).
-- opts.time: the signing time, epoch seconds (default the client's clock).
function Client:presigned_post(bucket, key_or_prefix, opts)
  return post_policy.presigned_post(self, bucket, key_or_prefix, opts)
end

--- sync(src, dst, opts) -> result | nil, err
-- objstore.sync with this client: makes dst like src (a local directory
-- path or { bucket =, prefix =, client = }, either way, or two remote
-- sides); the options, result and errors are objstore.sync's
-- (docs/sync.md).
function Client:sync(src, dst, opts)
  return sync.method_sync(self, src, dst, opts)
end

--- check(src, dst, opts) -> report | nil, err
-- objstore.check with this client: what a sync would change, changing
-- nothing; the options and report are objstore.check's.
function Client:check(src, dst, opts)
  return sync.method_check(self, src, dst, opts)
end

--- sign_for_proxy(method, bucket, key, opts) -> { url, headers, clear } | nil, err
-- Signs a "GET", "HEAD" or "PUT" for nginx's proxy_pass to send (S3 SigV4
-- with UNSIGNED-PAYLOAD, OSS V1 or V4): `headers` is the complete set the
-- store must get, `clear` every other header of the caller, to remove
-- before proxying (an allow-list: only Range, the conditionals and an
-- upload's entity headers pass, signed).
-- opts.headers: the incoming request's complete headers (a repeated one as
--   a list); refuse the request when reading them was truncated.
-- opts.extra_headers: the handler's own headers, signed as given
--   (x-amz-meta-*, a storage class).
-- opts.version_id: the version to read.
-- opts.time: the signing time, epoch seconds (default the client's clock).
function Client:sign_for_proxy(method, bucket, key, opts)
  return gateway.sign_for_proxy(self, method, bucket, key, opts)
end

--- hidden_response_headers(headers, keep) -> { name, ... }
-- The x-amz-*/x-oss-* headers of a response a gateway should hide from its
-- caller, except those `keep` lists (names, or prefixes ending in "*").
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
