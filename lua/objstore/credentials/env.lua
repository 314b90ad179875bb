--- Credentials from the environment: AWS_* for S3; OSS_*, then Alibaba
-- Cloud's ALIBABA_CLOUD_* names, for OSS.
local util = require "objstore.credentials.util"
local dialects = require "objstore.engine.dialect"

local getenv = util.getenv
local ipairs = ipairs

local _M = {}

local function env_creds(ak, sk, token, source)
  if ak and sk then return { access_key = ak, secret_key = sk, session_token = token, source = source } end
  return nil
end

--- Credentials from the environment (`env` is an optional table standing in
-- for os.getenv, for tests). Returns a table or nil. The names are the
-- dialect's env_credentials, pairs in order: OSS reads OSS_* first, then
-- Alibaba Cloud's ALIBABA_CLOUD_* names; S3 AWS_* (the token also as
-- AWS_SECURITY_TOKEN). Unknown providers read S3's.
function _M.from_env(provider, env)
  local d = dialects.get(provider) or dialects.s3
  for _, names in ipairs(d.env_credentials) do
    local token
    for i = 3, #names do
      token = token or getenv(env, names[i])
    end
    local c = env_creds(getenv(env, names[1]), getenv(env, names[2]), token, "env")
    if c then return c end
  end
  return nil
end

--- The environment as a provider ("s3" or "oss"): nil, nil when unset.
function _M.provider(opts)
  opts = opts or {}
  return function() return _M.from_env(opts.provider or "s3", opts.env) end
end

return _M
