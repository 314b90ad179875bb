--- Credentials named by profiles in shared files.
--
--   aws_profile(opts)      ~/.aws/credentials + ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE,
--                          AWS_CONFIG_FILE), profile opts.profile / AWS_PROFILE / "default":
--                          static keys (+ aws_session_token); role_arn with source_profile
--                          (chains of any length, loops refused), credential_source
--                          (Environment, Ec2InstanceMetadata, EcsContainer) or
--                          web_identity_token_file; credential_process.
--   alibaba_profile(opts)  ~/.aliyun/config.json (the aliyun CLI's; profile opts.profile /
--                          ALIBABA_CLOUD_PROFILE / its "current"; modes AK, StsToken,
--                          RamRoleArn, EcsRamRole, ChainableRamRoleArn), then
--                          ~/.alibabacloud/credentials (ALIBABA_CLOUD_CREDENTIALS_FILE; INI,
--                          types access_key, sts, ram_role_arn, ecs_ram_role).
-- Each returns a provider; the files are read at its first call (never at
-- require). A profile that is not there is "not configured" (nil, nil
-- from resolve); one that is there but unusable is an error naming the
-- file and profile, never a secret.
local util = require "objstore.credentials.util"
local env_source = require "objstore.credentials.env"
local shared_files = require "objstore.credentials.shared_files"
local assume_role_mod = require "objstore.credentials.assume_role"
local metadata = require "objstore.credentials.metadata"
local process = require "objstore.credentials.process"
local web_identity = require "objstore.credentials.web_identity"
local cjson = require "cjson.safe"

local type, pairs, tostring, tonumber = type, pairs, tostring, tonumber

local _M = {}

local function static(ak, sk, token, source)
  local c = { access_key = ak, secret_key = sk, session_token = token, source = source }
  return function() return c end
end

local assume_role = assume_role_mod.new

-- ---------------------------------------------------------------------------
-- AWS

local function aws_settings(profile, env)
  return select(2, shared_files.from_shared_files(profile, env))
end

local function sts_endpoint(env, settings)
  return util.getenv(env, "AWS_ENDPOINT_URL_STS") or util.getenv(env, "AWS_ENDPOINT_URL") or settings.endpoint_url
end

local SOURCES = {
  Environment = function(env)
    return function() return env_source.from_env("s3", env) end
  end,
  Ec2InstanceMetadata = function(env) return metadata.imds{ env = env } end,
  EcsContainer = function(env) return metadata.container{ env = env } end,
}

--- The provider of AWS profile `name`: provider | nil, nil (no such
-- profile, or nothing in it) | nil, err.
local function aws_resolve(name, env, visiting)
  local settings = aws_settings(name, env)
  local where = "profile " .. name
  if visiting[name] then return nil, util.fail(where, "source_profile loops back to itself") end
  visiting[name] = true
  local ak, sk = settings.aws_access_key_id, settings.aws_secret_access_key
  if settings.role_arn then
    local source, err
    if settings.source_profile then
      if settings.source_profile == name then
        -- A profile may hold the keys its own role is assumed with.
        if not (ak and sk) then return nil, util.fail(where, "source_profile is itself but it has no keys") end
        source = static(ak, sk, settings.aws_session_token, where)
      else
        source, err = aws_resolve(settings.source_profile, env, visiting)
        if not source then
          return nil, err or util.fail(where, "source_profile '" .. settings.source_profile .. "' has no credentials")
        end
      end
    elseif settings.credential_source then
      local make = SOURCES[settings.credential_source]
      if not make then
        return nil, util.fail(where, "credential_source '" .. settings.credential_source
          .. "' is not one of Environment, Ec2InstanceMetadata, EcsContainer")
      end
      source = make(env)
    elseif settings.web_identity_token_file then
      return web_identity.aws{ env = env, role_arn = settings.role_arn,
        token_file = settings.web_identity_token_file, session_name = settings.role_session_name,
        endpoint = sts_endpoint(env, settings), region = settings.region }
    else
      return nil, util.fail(where, "role_arn needs source_profile, credential_source or web_identity_token_file")
    end
    return assume_role{ role_arn = settings.role_arn, session_name = settings.role_session_name,
      external_id = settings.external_id, duration = tonumber(settings.duration_seconds),
      credentials = source, endpoint = sts_endpoint(env, settings),
      region = settings.region or util.getenv(env, "AWS_REGION") or util.getenv(env, "AWS_DEFAULT_REGION"),
      name = "assume-role (" .. where .. ")" }
  end
  if ak and sk then return static(ak, sk, settings.aws_session_token, "shared-file:" .. name) end
  if ak or sk then
    return nil, util.fail(where, "has only one of aws_access_key_id and aws_secret_access_key")
  end
  if settings.credential_process then
    return process.provider(settings.credential_process)
  end
  return nil, nil
end

--- A provider for an AWS profile (see the module notes). `opts.profile`,
-- `opts.env`. Returns nil, nil from the call when the profile has nothing.
function _M.aws_profile(opts)
  opts = opts or {}
  local resolved, rerr
  return function(client, reason)
    if resolved == nil and not rerr then
      local name = opts.profile or util.getenv(opts.env, "AWS_PROFILE")
        or util.getenv(opts.env, "AWS_DEFAULT_PROFILE") or "default"
      resolved, rerr = aws_resolve(name, opts.env, {})
      if not resolved then
        local e = rerr
        rerr = nil -- the files may be fixed before the next call
        return nil, e
      end
    end
    return resolved(client, reason)
  end
end

-- ---------------------------------------------------------------------------
-- Alibaba Cloud

local function sts_options(env)
  return { provider = "oss", endpoint = util.getenv(env, "ALIBABA_CLOUD_STS_ENDPOINT"),
    region = util.getenv(env, "ALIBABA_CLOUD_STS_REGION") }
end

local function ali_role(env, where, ak, sk, token, role_arn, session_name, duration, policy, source)
  local o = sts_options(env)
  o.role_arn, o.session_name, o.duration, o.policy = role_arn, session_name, duration, policy
  o.name = "ram-role-arn (" .. where .. ")"
  if source then o.credentials = source else o.access_key, o.secret_key, o.session_token = ak, sk, token end
  if not o.credentials and not (ak and sk) then return nil, util.fail(where, "a RAM role needs access keys") end
  return assume_role(o)
end

local function cli_profile(env, by_name, name, where, visiting)
  local p = by_name[name]
  if not p then return nil, nil end
  if visiting[name] then return nil, util.fail(where, "source_profile loops back to itself") end
  visiting[name] = true
  local mode = p.mode or "AK"
  local ak, sk = p.access_key_id, p.access_key_secret
  if mode == "AK" or mode == "StsToken" then
    if type(ak) ~= "string" or ak == "" or type(sk) ~= "string" or sk == "" then
      return nil, util.fail(where, "mode " .. mode .. " needs access_key_id and access_key_secret")
    end
    return static(ak, sk, mode == "StsToken" and p.sts_token or nil, where)
  elseif mode == "RamRoleArn" then
    return ali_role(env, where, ak, sk, nil, p.ram_role_arn, p.ram_session_name,
      tonumber(p.expired_seconds), nil)
  elseif mode == "EcsRamRole" then
    return metadata.ecs_ram_role{ env = env, role_name = p.ram_role_name }
  elseif mode == "ChainableRamRoleArn" then
    local src, err = cli_profile(env, by_name, tostring(p.source_profile), "profile " .. tostring(p.source_profile)
      .. " of " .. where, visiting)
    if not src then return nil, err or util.fail(where, "source_profile has no credentials") end
    return ali_role(env, where, nil, nil, nil, p.ram_role_arn, p.ram_session_name, tonumber(p.expired_seconds),
      nil, src)
  end
  return nil, util.fail(where, "mode '" .. tostring(mode) .. "' is not supported")
end

local function from_cli_config(env, profile)
  local path = util.getenv(env, "ALIBABA_CLOUD_CONFIG_FILE") or util.expand(env, "~/.aliyun/config.json")
  local text = util.read_file(path)
  if not text then return nil, nil end
  local t = cjson.decode(text)
  if type(t) ~= "table" or type(t.profiles) ~= "table" then
    return nil, util.fail(path, "is not an aliyun CLI configuration (JSON with profiles)")
  end
  local by_name = {}
  for _, p in pairs(t.profiles) do
    if type(p) == "table" and type(p.name) == "string" then by_name[p.name] = p end
  end
  local name = profile or (type(t.current) == "string" and t.current ~= "" and t.current) or "default"
  return cli_profile(env, by_name, name, path .. " profile " .. name, {})
end

local function from_credentials_file(env, profile)
  local path = util.getenv(env, "ALIBABA_CLOUD_CREDENTIALS_FILE") or util.expand(env, "~/.alibabacloud/credentials")
  local text = util.read_file(path)
  if not text then return nil, nil end
  local s = shared_files.parse_ini(text)[profile or "default"]
  if not s then return nil, nil end
  local where = path .. " [" .. (profile or "default") .. "]"
  local kind = s.type or "access_key"
  local ak, sk = s.access_key_id, s.access_key_secret
  if kind == "access_key" or kind == "sts" then
    if not (ak and sk) then
      return nil, util.fail(where, "type " .. kind .. " needs access_key_id and access_key_secret")
    end
    return static(ak, sk, kind == "sts" and s.security_token or nil, where)
  elseif kind == "ram_role_arn" then
    return ali_role(env, where, ak, sk, s.security_token, s.role_arn, s.role_session_name,
      tonumber(s.role_session_expiration), s.policy)
  elseif kind == "ecs_ram_role" then
    return metadata.ecs_ram_role{ env = env, role_name = s.role_name }
  end
  return nil, util.fail(where, "type '" .. kind .. "' is not supported")
end

--- Alibaba Cloud profiles: the aliyun CLI's config.json, then the
-- credentials file (opts.profile, opts.env).
function _M.alibaba_profile(opts)
  opts = opts or {}
  local resolved
  return function(client, reason)
    if not resolved then
      local profile = opts.profile or util.getenv(opts.env, "ALIBABA_CLOUD_PROFILE")
      local p, err = from_cli_config(opts.env, profile)
      if not p and not err then p, err = from_credentials_file(opts.env, profile) end
      if not p then return nil, err end
      resolved = p
    end
    return resolved(client, reason)
  end
end

return _M
