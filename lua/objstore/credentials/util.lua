--- Small pieces the credential providers share: the environment (or the
-- table standing in for it), files, JSON answers, errors naming a source.
local errors = require "objstore.errors"
local clock = require "objstore.clock"
local cjson = require "cjson.safe"

local os_getenv, io_open, type, tostring = os.getenv, io.open, type, tostring

local _M = {}

-- Seconds before expiration at which credentials are refreshed, so a
-- request signed now is not rejected in flight.
_M.REFRESH_MARGIN = 300

--- A variable from `env` (a table standing in for os.getenv, for tests),
-- else the process environment; "" counts as unset.
function _M.getenv(env, name)
  local v = env and env[name]
  if v == nil then v = os_getenv(name) end
  if v == "" then return nil end
  return v
end

function _M.read_file(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- "~/x" against HOME.
function _M.expand(env, path)
  if path:sub(1, 2) == "~/" then return (_M.getenv(env, "HOME") or "") .. path:sub(2) end
  return path
end

--- An error of credential source `source` (never with a secret in it).
function _M.fail(source, message, code)
  return errors.new{ code = code or "CredentialsError", retryable = false, source = source,
    message = source .. ": " .. message }
end

--- Decodes a JSON object answer; nil, err naming the source otherwise.
function _M.json(source, text)
  local t = type(text) == "string" and cjson.decode(text) or nil
  if type(t) ~= "table" then return nil, _M.fail(source, "the answer is not a JSON object", "MalformedResponse") end
  return t
end

--- Credentials from the common field names of a JSON answer: AWS's
-- (AccessKeyId, SecretAccessKey, Token | SessionToken, Expiration) and
-- Alibaba's (AccessKeyId, AccessKeySecret, SecurityToken, Expiration).
function _M.from_json(source, t, need_expiration)
  local ak, sk = t.AccessKeyId, t.SecretAccessKey or t.AccessKeySecret
  local token = t.Token or t.SessionToken or t.SecurityToken
  if type(ak) ~= "string" or ak == "" or type(sk) ~= "string" or sk == "" then
    return nil, _M.fail(source, "the answer has no AccessKeyId and secret", "MalformedResponse")
  end
  if token ~= nil and type(token) ~= "string" then token = nil end
  local exp
  if t.Expiration ~= nil then
    exp = clock.parse_iso8601(t.Expiration)
    if not exp then
      return nil, _M.fail(source, "Expiration '" .. tostring(t.Expiration) .. "' is not an ISO 8601 time",
        "MalformedResponse")
    end
  elseif need_expiration then
    return nil, _M.fail(source, "the answer has no Expiration", "MalformedResponse")
  end
  return { access_key = ak, secret_key = sk, session_token = token, expiration = exp, source = source }
end

--- Whether an environment flag is set to true.
function _M.flag(env, name)
  local v = _M.getenv(env, name)
  return v ~= nil and v:lower() == "true"
end

--- A provider from whatever the caller gave: a function, an object with
-- :get() (or :resolve()), or a plain table of static credentials; nil for
-- anything else.
function _M.provider(v)
  if type(v) == "function" then return v end
  if type(v) == "table" then
    if type(v.get) == "function" then return function(client, reason) return v:get(client, reason) end end
    if type(v.resolve) == "function" then return function(client, reason) return v:resolve(client, reason) end end
    if v.access_key then
      local c = { access_key = v.access_key, secret_key = v.secret_key, session_token = v.session_token,
        expiration = v.expiration }
      return function() return c end
    end
  end
  return nil
end

return _M
