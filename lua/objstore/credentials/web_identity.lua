--- Credentials for a workload identity token (Kubernetes service account,
-- CI OIDC token): the token file is read at each renewal and exchanged at
-- STS, unsigned. Refreshing providers (objstore.credentials.refreshing).
--
--   aws(opts)  AssumeRoleWithWebIdentity: AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN,
--              AWS_ROLE_SESSION_NAME; STS endpoint AWS_ENDPOINT_URL_STS, region
--              AWS_REGION / AWS_DEFAULT_REGION
--   oidc(opts) Alibaba Cloud AssumeRoleWithOIDC: ALIBABA_CLOUD_OIDC_TOKEN_FILE,
--              ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN,
--              ALIBABA_CLOUD_ROLE_SESSION_NAME; STS region ALIBABA_CLOUD_STS_REGION,
--              endpoint ALIBABA_CLOUD_STS_ENDPOINT
-- opts override each variable: token_file, role_arn, oidc_provider_arn,
-- session_name, duration, policy, endpoint, region; env, margin, on_error.
local util = require "objstore.credentials.util"
local fetch = require "objstore.credentials.fetch"
local refreshing = require "objstore.credentials.refreshing"

local _M = {}

local function token_of(source, path)
  local t = util.read_file(path)
  if not t then return nil, util.fail(source, "cannot read the token file " .. path) end
  t = t:gsub("^%s+", ""):gsub("%s+$", "")
  if t == "" then return nil, util.fail(source, "the token file " .. path .. " is empty") end
  return t
end

local function make(spec)
  return function(opts)
    opts = opts or {}
    local env, holder = opts.env, {}
    local function setting(field, var) return opts[field] or util.getenv(env, var) end
    return refreshing.new{ name = spec.source, margin = opts.margin, on_error = opts.on_error,
      fetch = function(client)
        local params = { duration = opts.duration, policy = opts.policy,
          session_name = setting("session_name", spec.session_var) or ("objstore-" .. os.time()) }
        for field, var in pairs(spec.required) do
          params[field] = setting(field, var)
          if not params[field] then return nil, util.fail(spec.source, var .. " is not set", "NoCredentials") end
        end
        local token, err = token_of(spec.source, util.expand(env, params.token_file))
        if not token then return nil, err end
        params[spec.token_param], params.token_file = token, nil
        local s = fetch.sts(holder, "sts", client, { provider = spec.provider,
          endpoint = opts.endpoint or util.getenv(env, spec.endpoint_var),
          region = opts.region or spec.region(env) })
        return s[spec.method](s, params)
      end }
  end
end

_M.aws = make{ source = "web identity", provider = "s3", method = "assume_role_with_web_identity",
  token_param = "web_identity_token", session_var = "AWS_ROLE_SESSION_NAME", endpoint_var = "AWS_ENDPOINT_URL_STS",
  required = { token_file = "AWS_WEB_IDENTITY_TOKEN_FILE", role_arn = "AWS_ROLE_ARN" },
  region = function(env) return util.getenv(env, "AWS_REGION") or util.getenv(env, "AWS_DEFAULT_REGION") end }

_M.oidc = make{ source = "OIDC", provider = "oss", method = "assume_role_with_oidc", token_param = "oidc_token",
  session_var = "ALIBABA_CLOUD_ROLE_SESSION_NAME", endpoint_var = "ALIBABA_CLOUD_STS_ENDPOINT",
  required = { token_file = "ALIBABA_CLOUD_OIDC_TOKEN_FILE", role_arn = "ALIBABA_CLOUD_ROLE_ARN",
    oidc_provider_arn = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN" },
  region = function(env) return util.getenv(env, "ALIBABA_CLOUD_STS_REGION") end }

return _M
