-- Access phase of every proxied request: count it, draw a fault, and
-- either answer it here (the request never reaches the server: slowdown,
-- internal, reset, stall) or hand it to a location that forwards it and
-- then damages the response (reset_mid -> @cut, truncate -> @short,
-- lost -> @lost). With no fault drawn the request goes on to proxy_pass
-- untouched (body streamed, Host kept as the client signed it).
local state = require "faultproxy.state"

local ngx = ngx
local random, floor = math.random, math.floor

local _M = {}

local function xml_escape(s)
  return (s:gsub("[<>&\"']", { ["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;",
    ["'"] = "&apos;" }))
end

local function request_id()
  return string.format("faultproxy-%08x%08x", floor(random() * 0xffffffff), floor(random() * 0xffffffff))
end

local ERRORS = {
  slowdown = { 503, "SlowDown", "Please reduce your request rate." },
  internal = { 500, "InternalError", "We encountered an internal error. Please try again." },
  expired = { 400, "ExpiredToken", "The provided token has expired." },
}

local function s3_error(kind, cfg)
  local e = ERRORS[kind]
  if kind == "slowdown" and cfg.retry_after then ngx.header["Retry-After"] = cfg.retry_after end
  local rid = request_id()
  ngx.status = e[1]
  ngx.header["Content-Type"] = "application/xml"
  ngx.header["x-amz-request-id"] = rid
  ngx.header["x-faultproxy-fault"] = kind
  local body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' .. e[2] .. '</Code><Message>' .. e[3]
    .. '</Message><Resource>' .. xml_escape(ngx.var.uri or "/") .. '</Resource><RequestId>' .. rid
    .. '</RequestId><HostId>faultproxy</HostId></Error>'
  ngx.header["Content-Length"] = #body
  -- nginx reads and discards an unread request body before it reuses the
  -- connection, or closes it: either way nothing is forwarded.
  ngx.print(body)
  return ngx.exit(e[1])
end

--- Which fault (kind name) this request gets, or nil.
local function draw(cfg, method, uri)
  if cfg.match and not uri:find(cfg.match) then return nil end
  local eligible, total = {}, 0
  for _, k in ipairs(state.KINDS) do
    local r = cfg.rates[k.name]
    if r then
      local methods = r.methods or cfg.methods
      local ok = (not methods or methods[method]) and not (k.body and method == "HEAD")
        and not (r.match and not uri:find(r.match))
      if ok then
        eligible[#eligible + 1] = { k.name, r.rate }
        total = total + r.rate
      end
    end
  end
  if total <= 0 then return nil end
  local u = random()
  local acc = 0
  for _, e in ipairs(eligible) do
    acc = acc + e[2]
    if u < acc then return e[1] end
  end
  return nil
end

function _M.run()
  local method = ngx.req.get_method()
  state.incr("n:requests")
  state.incr("m:" .. method)
  local cfg = state.config()
  local kind = cfg and draw(cfg, method, ngx.var.request_uri or "/")
  if kind then
    -- max: at most that many of this kind (counted since the last reset).
    local n = state.incr("f:" .. kind)
    local max = cfg.rates[kind].max
    if max and n and n > max then
      state.incr("f:" .. kind, -1)
      kind = nil
    end
  end
  if not kind then
    state.incr("n:forwarded")
    return
  end
  state.incr("fm:" .. kind .. ":" .. method)
  ngx.var.fault = kind
  if ERRORS[kind] then
    return s3_error(kind, cfg)
  elseif kind == "reset" then
    return ngx.exit(444) -- close the connection without a response
  elseif kind == "stall" then
    -- Longer than the client's timeout: it gives up first. Bounded by
    -- stall_seconds (at most 60, see state.normalize).
    ngx.sleep(cfg.stall_seconds)
    return ngx.exit(444)
  end
  state.incr("n:forwarded")
  if kind == "reset_mid" then return ngx.exec("@cut") end
  if kind == "truncate" then return ngx.exec("@short") end
  if kind == "lost" then return ngx.exec("@lost") end
end

--- Log phase: what the client was sent (444: closed without a response).
function _M.log()
  if (ngx.var.uri or ""):find("^/__faults") then return end
  state.incr("s:" .. tostring(ngx.status))
end

return _M
