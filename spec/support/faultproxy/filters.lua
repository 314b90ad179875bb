-- Header and body filters of the locations that forward a request and
-- then damage its response:
--   @cut   (reset_mid): the status line and headers go out as the server
--          sent them, then only part of the body (a random cut point below
--          Content-Length), then the connection closes (the location has
--          keepalive_timeout 0): the client sees a body shorter than its
--          Content-Length. A response with an empty body is announced with
--          Content-Length 1 and cut at 0, so the client still sees the
--          response break off after the server has acted (e.g. a PUT).
--   @short (truncate): Content-Length is removed and the body cut at a
--          random point, then ended properly (chunked): a short body that
--          is valid HTTP, which only a client checking lengths or digests
--          notices.
local state = require "faultproxy.state"

local ngx = ngx
local random, floor, tonumber = math.random, math.floor, tonumber

local _M = {}

-- A cut point in 0 .. len-1, not before the configured cut_from fraction.
local function pick_cut(len)
  if not len or len <= 0 then return 0 end
  local cfg = state.config()
  local from = floor(len * (cfg and cfg.cut_from or 0))
  return from + floor(random() * (len - from))
end

function _M.header_cut()
  local len = tonumber(ngx.header["Content-Length"])
  local ctx = ngx.ctx
  ctx.sent = 0
  if len == 0 then
    ngx.header["Content-Length"] = 1
    ctx.cut_at = 0
  else
    ctx.cut_at = len and pick_cut(len) or floor(random() * 65536)
  end
  ngx.header["x-faultproxy-fault"] = "reset_mid"
  state.incr("n:cut_responses")
end

function _M.header_short()
  local len = tonumber(ngx.header["Content-Length"])
  local ctx = ngx.ctx
  ctx.sent = 0
  ctx.cut_at = len and pick_cut(len) or floor(random() * 65536)
  ngx.header["Content-Length"] = nil
  ngx.header["x-faultproxy-fault"] = "truncate"
end

--- Passes the body up to ctx.cut_at bytes, then ends it (eof): nginx
-- discards the rest of the upstream response.
function _M.body_cut()
  local ctx = ngx.ctx
  local cut_at = ctx.cut_at
  if not cut_at then return end
  if ctx.done then
    ngx.arg[1] = nil
    return
  end
  local chunk = ngx.arg[1] or ""
  local room = cut_at - ctx.sent
  if #chunk >= room or ngx.arg[2] then
    ngx.arg[1] = chunk:sub(1, room > 0 and room or 0)
    ngx.arg[2] = true
    ctx.sent = cut_at
    ctx.done = true
    return
  end
  ctx.sent = ctx.sent + #chunk
end

return _M
