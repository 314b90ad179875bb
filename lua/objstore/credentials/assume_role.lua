--- A refreshing provider of temporary credentials from STS AssumeRole.
local errors = require "objstore.errors"
local fetch = require "objstore.credentials.fetch"
local refreshing = require "objstore.credentials.refreshing"

local type, pairs = type, pairs

local _M = {}

-- Options of assume_role that configure the provider, not the STS call.
local REFRESH_OPTS = { margin = true, retry_after = true, now = true, on_error = true, name = true }

--- A refreshing provider of temporary credentials from STS AssumeRole
-- (objstore.sts.assume_role's options: provider "s3" or "oss", endpoint,
-- region, the caller's keys or `credentials` (a provider), role_arn,
-- session_name, duration, policy, external_id), renewed `margin` seconds
-- (default objstore.credentials.REFRESH_MARGIN) before expiry; see objstore.credentials.refreshing.
-- Nothing is sent before the first request that needs the credentials.
function _M.new(opts)
  if type(opts) ~= "table" then
    errors.argument("credentials.assume_role", 1, "opts", "must be a table, " .. errors.got(opts))
  end
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
  local holder = {}
  refresh.name = refresh.name or ("assume-role " .. opts.role_arn)
  refresh.fetch = function(client)
    local s = fetch.sts(holder, "sts", client, sts_opts)
    return s:assume_role(params)
  end
  return refreshing.new(refresh)
end

return _M
