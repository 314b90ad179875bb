--- The AWS CLI's shared files (~/.aws/credentials and ~/.aws/config):
-- the INI parser and a profile's merged settings. A leaf module: the
-- client reads region and endpoint_url from here without the providers.
local util = require "objstore.credentials.util"

local pairs = pairs
local getenv, read_file = util.getenv, util.read_file

local _M = {}

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

return _M
