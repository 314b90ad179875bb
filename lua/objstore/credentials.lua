--- Where credentials come from when a client is not given them, and how
-- expiring ones are refreshed. A provider is a function
-- `provider(client, reason) -> { access_key, secret_key, session_token?,
-- expiration? (epoch seconds) } | nil, err`; the client calls it again
-- before `expiration` (reason "rejected" after the server refused them).
--
-- The default chains (nothing is read or fetched before the first request;
-- a profile named by opts.profile replaces the whole chain, see
-- named_profile):
--   S3 (the order of the AWS SDKs for Java v2 and Go): environment
--     (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), web
--     identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), the shared
--     files' profile (opts.profile / AWS_PROFILE / "default": keys, role
--     chains, credential_process), container credentials
--     (AWS_CONTAINER_CREDENTIALS_*), EC2 instance metadata (unless
--     AWS_EC2_METADATA_DISABLED=true).
--   OSS (the order of Alibaba Cloud's credentials SDKs, after ossutil's
--     OSS_* variables): OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET /
--     OSS_SESSION_TOKEN, ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET /
--     ALIBABA_CLOUD_SECURITY_TOKEN, OIDC (ALIBABA_CLOUD_OIDC_TOKEN_FILE,
--     _ROLE_ARN, _OIDC_PROVIDER_ARN), ~/.aliyun/config.json,
--     ~/.alibabacloud/credentials, ECS RAM role metadata (unless
--     ALIBABA_CLOUD_ECS_METADATA_DISABLED=true).
local errors = require "objstore.errors"
local util = require "objstore.credentials.util"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring

local _M = {}

-- Seconds before expiration at which credentials are refreshed, so a
-- request signed now is not rejected in flight.
_M.REFRESH_MARGIN = 300

local getenv = util.getenv

local function env_creds(ak, sk, token, source)
  if ak and sk then return { access_key = ak, secret_key = sk, session_token = token, source = source } end
  return nil
end

--- Credentials from the environment (`env` is an optional table standing in
-- for os.getenv, for tests). Returns a table or nil. OSS reads OSS_* first,
-- then Alibaba Cloud's ALIBABA_CLOUD_* names.
function _M.from_env(provider, env)
  if provider == "oss" then
    return env_creds(getenv(env, "OSS_ACCESS_KEY_ID"), getenv(env, "OSS_ACCESS_KEY_SECRET"),
      getenv(env, "OSS_SESSION_TOKEN"), "env")
      or env_creds(getenv(env, "ALIBABA_CLOUD_ACCESS_KEY_ID"), getenv(env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        getenv(env, "ALIBABA_CLOUD_SECURITY_TOKEN"), "env")
  end
  return env_creds(getenv(env, "AWS_ACCESS_KEY_ID"), getenv(env, "AWS_SECRET_ACCESS_KEY"),
    getenv(env, "AWS_SESSION_TOKEN") or getenv(env, "AWS_SECURITY_TOKEN"), "env")
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

local read_file = util.read_file

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

--- The environment as a provider ("s3" or "oss"): nil, nil when unset.
function _M.env(opts)
  opts = opts or {}
  return function() return _M.from_env(opts.provider or "s3", opts.env) end
end

function _M.profile(opts) return require("objstore.credentials.files").aws_profile(opts) end
function _M.alibaba_profile(opts) return require("objstore.credentials.files").alibaba_profile(opts) end
function _M.process(command, opts) return require("objstore.credentials.process").provider(command, opts) end
function _M.web_identity(opts) return require("objstore.credentials.web_identity").aws(opts) end
function _M.oidc(opts) return require("objstore.credentials.web_identity").oidc(opts) end
function _M.container(opts) return require("objstore.credentials.metadata").container(opts) end
function _M.imds(opts) return require("objstore.credentials.metadata").imds(opts) end
function _M.ecs_ram_role(opts) return require("objstore.credentials.metadata").ecs_ram_role(opts) end

--- The first of `links` that gives credentials; once one has, it is the
-- one asked from then on (as the SDKs do). A link answers nil, nil when
-- its source is not configured (next link), nil, err when it is but fails
-- (the chain stops with that error). `links[i]` is { name, provider,
-- when = function() -> is the source configured? } or a provider.
function _M.chain(links, what)
  local chosen
  return function(client, reason)
    if chosen then return chosen(client, reason) end
    local tried = {}
    for _, link in ipairs(links) do
      local name, p, when = tostring(link.name or "provider"), link.provider or link, link.when
      if not when or when() then
        local c, err = _M.provider(p)(client, reason)
        if c then
          chosen = _M.provider(p)
          return c
        end
        if err and not link.optional then return nil, err end
        tried[#tried + 1] = name .. (err and (" (" .. tostring(err.message or err) .. ")") or "")
      end
    end
    return nil, errors.new{ code = "NoCredentials", retryable = false,
      message = "no credentials: " .. (what or "none of the sources has any") .. "; tried "
        .. table.concat(tried, ", ") }
  end
end

local function set(env, name) return function() return getenv(env, name) ~= nil end end

--- A profile asked for by name (the client's `profile` option, the
-- command line's --profile): it alone is asked, ahead of AWS_*/OSS_* keys
-- in the environment (as botocore does); a profile that is not there is a
-- ProfileNotFound error that names it.
function _M.named_profile(provider, name, env)
  local p = provider == "oss" and _M.alibaba_profile{ profile = name, env = env }
    or _M.profile{ profile = name, env = env }
  return function(client, reason)
    local c, err = p(client, reason)
    if c or err then return c, err end
    local files = provider == "oss" and "~/.aliyun/config.json or ~/.alibabacloud/credentials"
      or ((getenv(env, "AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials") .. " or "
        .. (getenv(env, "AWS_CONFIG_FILE") or "~/.aws/config"))
    return nil, errors.new{ code = "ProfileNotFound", retryable = false, source = "profile " .. name,
      message = "profile '" .. name .. "' not found (or without credentials) in " .. files }
  end
end

--- The default chain for a provider ("s3" or "oss"), see the module notes.
function _M.default_chain(provider, opts)
  opts = opts or {}
  local env = opts.env
  if provider == "oss" then
    if opts.profile then return _M.named_profile(provider, opts.profile, env) end
    return _M.chain({
      { name = "environment", provider = _M.env{ provider = "oss", env = env } },
      { name = "OIDC", provider = _M.oidc{ env = env }, when = set(env, "ALIBABA_CLOUD_OIDC_TOKEN_FILE") },
      { name = "profile", provider = _M.alibaba_profile{ profile = opts.profile, env = env } },
      { name = "ECS RAM role", provider = _M.ecs_ram_role{ env = env }, optional = true,
        when = function() return not util.flag(env, "ALIBABA_CLOUD_ECS_METADATA_DISABLED") end },
    }, "set OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET (or ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET) or a profile")
  end
  if opts.profile then return _M.named_profile(provider, opts.profile, env) end
  return _M.chain({
    { name = "environment", provider = _M.env{ provider = "s3", env = env } },
    { name = "web identity", provider = _M.web_identity{ env = env }, when = set(env, "AWS_WEB_IDENTITY_TOKEN_FILE") },
    { name = "profile", provider = _M.profile{ profile = opts.profile, env = env } },
    { name = "container", provider = _M.container{ env = env }, when = function()
      return getenv(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI") ~= nil
        or getenv(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") ~= nil
    end },
    { name = "instance metadata", provider = _M.imds{ env = env }, optional = true,
      when = function() return not util.flag(env, "AWS_EC2_METADATA_DISABLED") end },
  }, "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile in ~/.aws/credentials")
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
