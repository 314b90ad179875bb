--- Credentials from the environment: AWS_* for S3; OSS_*, then Alibaba
-- Cloud's ALIBABA_CLOUD_* names, for OSS.
local util = require "objstore.credentials.util"

local getenv = util.getenv

local _M = {}

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

--- The environment as a provider ("s3" or "oss"): nil, nil when unset.
function _M.provider(opts)
  opts = opts or {}
  return function() return _M.from_env(opts.provider or "s3", opts.env) end
end

return _M
