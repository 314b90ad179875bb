--- Chains of providers: the first source that is configured answers;
-- the default chains of S3 and OSS (see objstore.credentials) and a
-- profile named by the caller.
local errors = require "objstore.errors"
local util = require "objstore.credentials.util"
local env_source = require "objstore.credentials.env"
local files_source = require "objstore.credentials.files"
local metadata = require "objstore.credentials.metadata"
local web_identity = require "objstore.credentials.web_identity"
local dialects = require "objstore.engine.dialect"

local ipairs, tostring = ipairs, tostring
local getenv, provider_of = util.getenv, util.provider

local _M = {}

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
        local c, err = provider_of(p)(client, reason)
        if c then
          chosen = provider_of(p)
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

-- The credential sources of each family a dialect names in its
-- `credentials` field (objstore.engine.dialect): its profiles, the files they
-- are read from (for ProfileNotFound) and its default chain.
local FAMILIES = {
  aws = {
    profile = files_source.aws_profile,
    files = function(env)
      return (getenv(env, "AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials") .. " or "
        .. (getenv(env, "AWS_CONFIG_FILE") or "~/.aws/config")
    end,
    chain = function(provider, env, profile)
      return _M.chain({
        { name = "environment", provider = env_source.provider{ provider = provider, env = env } },
        { name = "web identity", provider = web_identity.aws{ env = env },
          when = set(env, "AWS_WEB_IDENTITY_TOKEN_FILE") },
        { name = "profile", provider = files_source.aws_profile{ profile = profile, env = env } },
        { name = "container", provider = metadata.container{ env = env }, when = function()
          return getenv(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI") ~= nil
            or getenv(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") ~= nil
        end },
        { name = "instance metadata", provider = metadata.imds{ env = env }, optional = true,
          when = function() return not util.flag(env, "AWS_EC2_METADATA_DISABLED") end },
      }, "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile in ~/.aws/credentials")
    end,
  },
  alibaba = {
    profile = files_source.alibaba_profile,
    files = function() return "~/.aliyun/config.json or ~/.alibabacloud/credentials" end,
    chain = function(provider, env, profile)
      return _M.chain({
        { name = "environment", provider = env_source.provider{ provider = provider, env = env } },
        { name = "OIDC", provider = web_identity.oidc{ env = env },
          when = set(env, "ALIBABA_CLOUD_OIDC_TOKEN_FILE") },
        { name = "profile", provider = files_source.alibaba_profile{ profile = profile, env = env } },
        { name = "ECS RAM role", provider = metadata.ecs_ram_role{ env = env }, optional = true,
          when = function() return not util.flag(env, "ALIBABA_CLOUD_ECS_METADATA_DISABLED") end },
      }, "set OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET (or ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET) or a profile")
    end,
  },
}

-- The credentials family of a provider name (unknown names: S3's).
local function family(provider)
  return FAMILIES[(dialects.get(provider) or dialects.s3).credentials]
end

--- A profile asked for by name (the client's `profile` option, the
-- command line's --profile): it alone is asked, ahead of AWS_*/OSS_* keys
-- in the environment (as botocore does); a profile that is not there is a
-- ProfileNotFound error that names it.
function _M.named_profile(provider, name, env)
  local fam = family(provider)
  local p = fam.profile{ profile = name, env = env }
  return function(client, reason)
    local c, err = p(client, reason)
    if c or err then return c, err end
    return nil, errors.new{ code = "ProfileNotFound", retryable = false, source = "profile " .. name,
      message = "profile '" .. name .. "' not found (or without credentials) in " .. fam.files(env) }
  end
end

--- The default chain for a provider ("s3" or "oss"), see the module notes.
function _M.default_chain(provider, opts)
  opts = opts or {}
  if opts.profile then return _M.named_profile(provider, opts.profile, opts.env) end
  return family(provider).chain(provider or "s3", opts.env, opts.profile)
end

return _M
