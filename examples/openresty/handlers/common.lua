--- What every handler of the example shares: the per-worker client, the
-- caller's authentication, keys from the request, JSON answers and the
-- mapping of objstore errors to short HTTP answers.
--
-- Configuration from the environment (named by `env` lines in nginx.conf):
-- OBJSTORE_DEMO_TOKEN (the Bearer token callers send; required: unset or
-- empty, every authenticated location answers 503 and the error log says
-- why), OBJSTORE_DEMO_METRICS_TOKEN (when set, /metrics wants it as a
-- Bearer token too), OBJSTORE_DEMO_BUCKET (default "objstore-demo"),
-- OBJSTORE_DEMO_THRESHOLD (bytes above which PUT /files/ goes multipart,
-- default 16 MiB), OBJSTORE_DEMO_PART_SIZE (default 8 MiB),
-- OBJSTORE_DEMO_DEADLINE (seconds a listing or a HEAD may take, retries
-- included, default 30; streamed bodies have none); the store from
-- AWS_ENDPOINT_URL, AWS_REGION, and AWS_ACCESS_KEY_ID /
-- AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (objstore's default chain,
-- or OBJSTORE_DEMO_CREDENTIALS_URL; cached per worker and across workers
-- by objstore.openresty.credentials).
local objstore = require "objstore"
local metrics = require "objstore.metrics"
local cached = require("objstore.openresty.credentials").cached
local credentials = require "objstore.credentials"
local request = require "objstore.engine.request"
local cjson = require "cjson.safe"

local _M = {}

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

-- Per worker, made on first use (never at require: init_by_lua has no env).
local client, registry, config

function _M.config()
  if not config then
    config = {
      token = env("OBJSTORE_DEMO_TOKEN"),
      metrics_token = env("OBJSTORE_DEMO_METRICS_TOKEN"),
      bucket = env("OBJSTORE_DEMO_BUCKET", "objstore-demo"),
      threshold = tonumber(env("OBJSTORE_DEMO_THRESHOLD", "")) or 16 * 1024 * 1024,
      part_size = tonumber(env("OBJSTORE_DEMO_PART_SIZE", "")) or 8 * 1024 * 1024,
      deadline = tonumber(env("OBJSTORE_DEMO_DEADLINE", "")) or 30,
    }
  end
  return config
end

--- The registry all workers report through (lua_shared_dict objstore_metrics).
function _M.registry()
  registry = registry or metrics.new{ shared = "objstore_metrics", flush_interval = 1 }
  return registry
end

--- A provider from a container-credentials style endpoint
-- (OBJSTORE_DEMO_CREDENTIALS_URL answering {AccessKeyId, SecretAccessKey,
-- Token, Expiration}), fetched with cosockets; any provider function of
-- objstore.credentials can take its place.
local function endpoint_provider(url)
  local t = require("objstore.transport.ngx").new{ connect_timeout = 2, read_timeout = 5 }
  return function()
    local res, err = t:request{ url = url }
    if not res then return nil, err end
    local doc = res.status == 200 and cjson.decode(res.body)
    if type(doc) ~= "table" or type(doc.AccessKeyId) ~= "string" then
      return nil, "credentials endpoint answered " .. res.status
    end
    return { access_key = doc.AccessKeyId, secret_key = doc.SecretAccessKey, session_token = doc.Token,
      expiration = doc.Expiration and require("objstore.clock").parse(doc.Expiration) }
  end
end

-- objstore's log lines into nginx's error log: an answer the example
-- passes on to its caller as it is (a missing key, a failed precondition)
-- is not a server error, so it is logged at info, not error.
local ngx_log = require("objstore.log").ngx()
local EXPECTED = { [304] = true, [404] = true, [412] = true, [416] = true }
function _M.log(level, message, fields)
  if level == "error" and fields and EXPECTED[fields.status] then level = "info" end
  return ngx_log(level, message)
end

function _M.client()
  if not client then
    local url = env("OBJSTORE_DEMO_CREDENTIALS_URL")
    local provider = url and endpoint_provider(url) or credentials.default_chain("s3")
    client = objstore.new{
      endpoint = env("AWS_ENDPOINT_URL", "http://127.0.0.1:7480"),
      region = env("AWS_REGION", "us-east-1"),
      addressing = "path",
      credentials = cached(provider, { dict = "objstore_creds", key = "demo" }),
      metrics = _M.registry(),
      log = _M.log, log_level = "warn",
      timeout = 600, connect_timeout = 5,
      retry = { max_attempts = 3 },
    }
  end
  return client
end

--- A JSON answer, then the end of the request.
function _M.json(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(body))
  return ngx.exit(status)
end

--- The methods a handler accepts, upper-cased, for a lookup.
_M.METHODS = { GET = "GET", PUT = "PUT", HEAD = "HEAD", DELETE = "DELETE" }

-- "Bearer <token>" per token, the header as most callers spell it:
-- compared as it is before the pattern that takes every spelling.
local bearers = {}

--- 401 unless `Authorization: Bearer <token>` (the token of `which`:
-- "token", the default, or "metrics_token"). No token configured: 503, and
-- an error log line (once per worker) — never a built-in token.
local refused_logged = false
function _M.authenticate(which)
  which = which or "token"
  local t = _M.config()[which]
  if not t then
    if not refused_logged then
      refused_logged = true
      ngx.log(ngx.ERR, "objstore-demo: OBJSTORE_DEMO_TOKEN is not set (or empty): refusing every request ",
        "until it is (and named by an env line of nginx.conf)")
    end
    return _M.json(503, { error = "NotConfigured", message = "the server has no access token configured" })
  end
  local h = ngx.var.http_authorization
  local bearer = bearers[which]
  if bearer == nil then
    bearer = t:find("^%S+$") and ("Bearer " .. t) or false -- a token with spaces never matches
    bearers[which] = bearer
  end
  if bearer and h == bearer then return end
  local token = h and h:match("^[Bb]earer%s+(%S+)%s*$")
  if token ~= t then
    ngx.header["WWW-Authenticate"] = 'Bearer realm="objstore-demo"'
    return _M.json(401, { error = "Unauthorized", message = "send Authorization: Bearer <token>" })
  end
end

--- The key after `prefix` in the request's path, percent-decoded first
-- (the raw path, not nginx's normalised $uri, so a key keeps its "//" and
-- "./"), then checked to start with `prefix`: "/%66iles/k" is "/files/k",
-- key "k". Only %XX is decoded: a "+" in a path is a plus (ngx.unescape_uri
-- alone would make "/files/a+b" the key "a b", as in a query string).
-- 400 for a path that does not start with it (nginx matched the
-- location on its normalised form), an empty key, a NUL byte, invalid
-- UTF-8 or more than 1024 bytes.
function _M.key_from_uri(prefix)
  local path = ngx.unescape_uri((ngx.var.request_uri:match("^[^?]*"):gsub("%+", "%%2B")))
  if path:sub(1, #prefix) ~= prefix then
    return _M.json(400, { error = "InvalidKey", message = "the path must start with " .. prefix })
  end
  return _M.check_key(path:sub(#prefix + 1))
end

function _M.check_key(key)
  local problem = request.key_problem(key)
  if problem then return _M.json(400, { error = "InvalidKey", message = "the key " .. problem }) end
  return key
end

-- objstore error -> (status, code): the store's not-found and precondition
-- answers pass through; missing credentials are 503; anything else of the
-- store or the network is 502 (504 for a timeout).
local PASS = { [404] = true, [412] = true, [416] = true, [304] = true }

function _M.fail(err)
  local code = err and err.code or "InternalError"
  local status = err and err.status
  if status and PASS[status] then -- luacheck: ignore 542
  elseif code == "NoCredentials" or code == "CredentialsError" then status = 503
  elseif code == "Timeout" or code == "DeadlineExceeded" then status = 504
  else status = 502 end
  if status == 502 or status == 503 or status == 504 then
    ngx.log(ngx.WARN, "objstore-demo: ", code, ": ", tostring(err and err.message))
  end
  return _M.json(status, { error = code, message = err and err.message, request_id = err and err.request_id })
end

return _M
