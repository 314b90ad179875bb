--- credential_process (AWS shared config): a command that prints
--   { "Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken"?, "Expiration"? }
-- Run again before Expiration (a refreshing provider); without
-- Expiration the credentials are kept. The command runs through the
-- shell and blocks until it exits (a CLI or script concern: in OpenResty
-- prefer a provider that uses cosockets). Its stderr is not captured, and
-- never lands in an error message with its stdout.
local util = require "objstore.credentials.util"
local refreshing = require "objstore.credentials.refreshing"

local io_popen, tostring = io.popen, tostring

local _M = {}

--- Runs `command`: its credentials, or nil, err naming the command's
-- first word (its arguments may hold secrets) and the failure.
function _M.run(command, source)
  source = source or ("credential_process " .. tostring(command:match("^%s*(%S+)")))
  local p = io_popen(command .. "; echo \"__objstore_rc=$?\"", "r")
  if not p then return nil, util.fail(source, "cannot be started") end
  local out = p:read("*a") or ""
  p:close()
  local rc = tonumber(out:match("__objstore_rc=(%d+)%s*$"))
  out = out:gsub("__objstore_rc=%d+%s*$", "")
  if rc ~= 0 then return nil, util.fail(source, "exited with status " .. tostring(rc)) end
  local t = util.json(source, out)
  if not t then return nil, util.fail(source, "did not print a JSON object", "MalformedResponse") end
  if t.Version ~= 1 then
    return nil, util.fail(source, "printed Version " .. tostring(t.Version) .. " (only 1 is known)",
      "MalformedResponse")
  end
  return util.from_json(source, t, false)
end

--- A refreshing provider running `command`.
function _M.provider(command, opts)
  opts = opts or {}
  local source = "credential_process " .. tostring(command:match("^%s*(%S+)"))
  return refreshing.new{ name = source, margin = opts.margin, on_error = opts.on_error,
    fetch = function() return _M.run(command, source) end }
end

return _M
