--- Where credentials come from when a client is not given them, and how
-- expiring ones are refreshed. A provider is a function returning
-- `{ access_key, secret_key, session_token?, expiration? (epoch seconds) }`
-- or `nil, err`; the client calls it again before `expiration`.
--
-- Order (as in the AWS SDKs): environment, then the shared files
-- `~/.aws/credentials` and `~/.aws/config` for the profile in AWS_PROFILE
-- (or "default"). OSS uses OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET /
-- OSS_SESSION_TOKEN.
local errors = require "objstore.errors"

local os_getenv, io_open, type, pairs = os.getenv, io.open, type, pairs

local _M = {}

-- Seconds before expiration at which credentials are refreshed, so a
-- request signed now is not rejected in flight.
_M.REFRESH_MARGIN = 300

local function getenv(env, name)
  local v = env and env[name]
  if v == nil then v = os_getenv(name) end
  if v == "" then return nil end
  return v
end

--- Credentials from the environment (`env` is an optional table standing in
-- for os.getenv, for tests). Returns a table or nil.
function _M.from_env(provider, env)
  if provider == "oss" then
    local ak = getenv(env, "OSS_ACCESS_KEY_ID")
    local sk = getenv(env, "OSS_ACCESS_KEY_SECRET")
    if ak and sk then
      return { access_key = ak, secret_key = sk, session_token = getenv(env, "OSS_SESSION_TOKEN"), source = "env" }
    end
    return nil
  end
  local ak = getenv(env, "AWS_ACCESS_KEY_ID")
  local sk = getenv(env, "AWS_SECRET_ACCESS_KEY")
  if ak and sk then
    return { access_key = ak, secret_key = sk,
      session_token = getenv(env, "AWS_SESSION_TOKEN") or getenv(env, "AWS_SECURITY_TOKEN"), source = "env" }
  end
  return nil
end

--- Parses an INI file as the AWS CLI writes them: `[section]` lines and
-- `key = value` pairs; `#`/`;` comments; keys lowercased.
function _M.parse_ini(text)
  local sections, current = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    local trimmed = line:match("^%s*(.-)%s*$")
    if trimmed ~= "" and not trimmed:match("^[#;]") then
      local name = trimmed:match("^%[%s*(.-)%s*%]$")
      if name then
        current = sections[name] or {}
        sections[name] = current
      elseif current then
        local k, v = trimmed:match("^([^=]-)%s*=%s*(.*)$")
        if k then current[k:lower()] = v end
      end
    end
  end
  return sections
end

local function read_file(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Profile settings merged from the shared credentials and config files.
-- Returns (credentials or nil, settings table).
function _M.from_shared_files(profile, env)
  local home = getenv(env, "HOME") or ""
  profile = profile or getenv(env, "AWS_PROFILE") or getenv(env, "AWS_DEFAULT_PROFILE") or "default"
  local cred_path = getenv(env, "AWS_SHARED_CREDENTIALS_FILE") or (home .. "/.aws/credentials")
  local conf_path = getenv(env, "AWS_CONFIG_FILE") or (home .. "/.aws/config")
  local settings = {}
  local conf = read_file(conf_path)
  if conf then
    local s = _M.parse_ini(conf)
    -- In the config file every profile but "default" is "[profile name]".
    local sec = s[profile == "default" and "default" or ("profile " .. profile)] or s[profile]
    for k, v in pairs(sec or {}) do settings[k] = v end
  end
  local cred = read_file(cred_path)
  if cred then
    for k, v in pairs(_M.parse_ini(cred)[profile] or {}) do settings[k] = v end
  end
  if settings.aws_access_key_id and settings.aws_secret_access_key then
    return { access_key = settings.aws_access_key_id, secret_key = settings.aws_secret_access_key,
      session_token = settings.aws_session_token, source = "shared-file:" .. profile }, settings
  end
  return nil, settings
end

--- The default chain for a provider ("s3" or "oss"): a provider function,
-- which returns nil, err (code NoCredentials) when no source has any.
function _M.default_chain(provider, opts)
  opts = opts or {}
  return function()
    local c = _M.from_env(provider, opts.env)
    if c then return c end
    if provider ~= "oss" then
      c = _M.from_shared_files(opts.profile, opts.env)
      if c then return c end
    end
    return nil, errors.new{ code = "NoCredentials", retryable = false,
      message = "no credentials: set " .. (provider == "oss" and "OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET"
        or "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile in ~/.aws/credentials") }
  end
end

-- Options of assume_role that configure the provider, not the STS call.
local REFRESH_OPTS = { margin = true, retry_after = true, now = true, on_error = true, name = true }

--- A refreshing provider of temporary credentials from STS AssumeRole
-- (objstore.sts.assume_role's options: provider "s3" or "oss", endpoint,
-- region, the caller's keys or `credentials` (a provider), role_arn,
-- session_name, duration, policy, external_id), renewed `margin` seconds
-- (default REFRESH_MARGIN) before expiry; see objstore.credentials.refreshing.
-- Nothing is sent before the first request that needs the credentials.
function _M.assume_role(opts)
  if type(opts) ~= "table" then errors.argument("credentials.assume_role", 1, "opts", "must be a table") end
  if type(opts.role_arn) ~= "string" or opts.role_arn == "" then
    errors.argument("credentials.assume_role", 1, "opts.role_arn", "is required, " .. errors.got(opts.role_arn))
  end
  local sts_opts, params, refresh = {}, {}, {}
  for k, v in pairs(opts) do
    if REFRESH_OPTS[k] then refresh[k] = v else sts_opts[k] = v end
  end
  for k, v in pairs(opts) do if not REFRESH_OPTS[k] then params[k] = v end end
  params.session_name = params.session_name or ("objstore-" .. os.time())
  params.duration = params.duration or 3600
  local fetch = require "objstore.credentials.fetch"
  local holder = {}
  refresh.name = refresh.name or ("assume-role " .. opts.role_arn)
  refresh.fetch = function(client)
    local s = fetch.sts(holder, "sts", client, sts_opts)
    return s:assume_role(params)
  end
  return require("objstore.credentials.refreshing").new(refresh)
end

--- A provider from whatever the caller gave: a function, an object with
-- :get() (or :resolve()), or a plain table of static credentials.
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
