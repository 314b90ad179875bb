--- The construction options of every transport: one schema, so that
-- `objstore.transport.curl.new(opts)` and `objstore.transport.ngx.new(opts)`
-- take the same names with the same meaning, and each refuses, with the
-- reason, what it cannot honour (never a silent ignore).
--
--   timeout          the whole request, seconds (0: none)
--   connect_timeout  seconds for a connection to be made
--   read_timeout     seconds without a byte received (ngx: each receive;
--                    curl: its low-speed limit, in whole seconds)
--   send_timeout     seconds without a byte sent (as read_timeout)
--   max_connections  connections per endpoint (curl: open at once per
--                    host; ngx: kept idle in the cosocket pool), also the
--                    default concurrency of `run`
--   proxy            "http://host:port" ("" : none, and for curl the
--                    *_proxy environment variables are not read)
--   user_agent       the User-Agent header (default "objstore/<version>")
--   tls = { ca_file, ca_path, insecure, min_version, server_name }
--                    the CAs a server certificate must chain to (a file, a
--                    directory), no verification at all (insecure = true),
--                    the lowest TLS version accepted ("1.0" .. "1.3"), the
--                    name sent as SNI and checked in the certificate
--
-- A transport adds options of its own (curl: `verbose`, `low_speed_limit`,
-- `low_speed_time`; ngx: `keepalive_timeout`) and lists the schema's names
-- it cannot honour with the reason (curl: `tls.server_name`; ngx:
-- `tls.ca_file`, `tls.ca_path`, which nginx's lua_ssl_trusted_certificate
-- sets).
-- @module objstore.transport.options
local errors = require "objstore.errors"

local pairs, floor, huge = pairs, math.floor, math.huge

local _M = {}

-- name -> the Lua type of its value ("any": checked below).
local SCHEMA = {
  timeout = "number", connect_timeout = "number", read_timeout = "number", send_timeout = "number",
  max_connections = "number", proxy = "string", user_agent = "string", tls = "table",
}
local TLS = { ca_file = "string", ca_path = "string", insecure = "boolean", min_version = "string",
  server_name = "string" }
local TLS_VERSIONS = { ["1.0"] = true, ["1.1"] = true, ["1.2"] = true, ["1.3"] = true }
local SECONDS = { timeout = true, connect_timeout = true, read_timeout = true, send_timeout = true }

_M.SCHEMA, _M.TLS = SCHEMA, TLS

--- check(fname, opts, own, cannot) -> opts, tls: checks `opts` against the
-- schema plus `own` (name -> type, the transport's own options); `cannot`
-- maps a schema name the transport does not honour ("tls.server_name") to
-- the reason. Raises in the one misuse format
-- ("objstore.<fname>: argument #1 (opts.tls.ca_file): <reason>").
-- Returns the options ({} for nil) and the tls table ({} for nil).
function _M.check(fname, opts, own, cannot)
  local allowed = {}
  for k, v in pairs(SCHEMA) do allowed[k] = v end
  for k, v in pairs(own or {}) do allowed[k] = v end
  opts = errors.options(fname, 1, opts, allowed)
  local tls = errors.options(fname, 1, opts.tls, TLS, "opts.tls")
  for name, why in pairs(cannot or {}) do
    local sub = name:match("^tls%.(.+)$")
    local v
    if sub then v = tls[sub] else v = opts[name] end
    if v ~= nil then errors.argument(fname, 1, "opts." .. name, why) end
  end
  for name in pairs(SECONDS) do
    local v = opts[name]
    if v ~= nil and (v ~= v or v < 0 or v == huge) then
      errors.argument(fname, 1, "opts." .. name, "must be a non-negative number of seconds, " .. errors.got(v))
    end
  end
  local m = opts.max_connections
  if m ~= nil and (m ~= floor(m) or m < 1 or m > 65536) then
    errors.argument(fname, 1, "opts.max_connections", "must be an integer from 1 to 65536, " .. errors.got(m))
  end
  if tls.min_version ~= nil and not TLS_VERSIONS[tls.min_version] then
    errors.argument(fname, 1, "opts.tls.min_version", 'must be "1.0", "1.1", "1.2" or "1.3", '
      .. errors.got(tls.min_version))
  end
  return opts, tls
end

return _M
