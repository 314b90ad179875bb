-- The fault proxy (spec/support/faultproxy.sh) as the specs use it: start
-- it, set the fault rates, read and zero its counters. Talks to the control
-- endpoint with objstore's own HTTP transport (no other dependency).
--
--   local faults = require "faults"
--   local fp = assert(faults.start())          -- idempotent; fp.endpoint
--   fp:set{ slowdown = 0.1, reset_mid = { rate = 0.03, methods = { "GET" } }, stall_seconds = 3 }
--   local s = fp:stats()   -- { requests, forwarded, faults = { slowdown = n, ... }, statuses, ... }
--   fp:reset_stats(); fp:clear(); fp:stop()     -- stop only if start() started it
local servers = require "servers"
local cjson = require "cjson.safe"
local curl = require "objstore.transport.curl"

local _M = {}

local Proxy = {}
Proxy.__index = Proxy

local function script()
  return "bash spec/support/faultproxy.sh"
end

--- Starts the proxy in front of `upstream` (default: OBJSTORE_TEST_ENDPOINT,
-- the rgw) unless it already runs there. Returns a proxy handle or nil, err.
function _M.start(upstream)
  upstream = upstream or os.getenv("OBJSTORE_TEST_ENDPOINT") or "http://127.0.0.1:7480"
  local was_running = servers.sh(script() .. " status")
  local env = "FAULTPROXY_UPSTREAM=" .. servers.q(upstream) .. " "
  local ok, out = servers.sh(env .. script() .. " start")
  if not ok then return nil, "faultproxy.sh start failed:\n" .. out end
  local _, envout = servers.sh(env .. script() .. " env")
  local endpoint = envout:match("FAULTPROXY_ENDPOINT=(%S+)")
  if not endpoint then return nil, "faultproxy.sh env gave no endpoint:\n" .. envout end
  local t = assert(curl.new{ timeout = 10, connect_timeout = 5, proxy = "" })
  return setmetatable({ endpoint = endpoint, upstream = upstream, transport = t,
    started_here = not was_running or nil }, Proxy)
end

function Proxy:_request(method, path, body)
  local res, err = self.transport:request{ method = method, url = self.endpoint .. path, body = body,
    headers = body and { ["Content-Type"] = "application/json" } or nil }
  if not res then return nil, "control " .. method .. " " .. path .. ": " .. tostring(err) end
  local t = cjson.decode(res.body or "")
  if t == cjson.null then t = nil end
  if res.status ~= 200 then
    return nil, "control " .. method .. " " .. path .. ": HTTP " .. res.status .. " " .. tostring(t and t.error
      or res.body)
  end
  return t
end

--- Sets the fault configuration (replaces the previous one). `cfg`: kind =
-- rate or { rate =, methods = {...}, max = n, match = pattern } for kinds
-- slowdown, internal, reset, stall, reset_mid, lost, truncate (max: at most
-- n of that kind since the last reset_stats; match: a Lua pattern the
-- request URI, path and query as sent, must contain); methods = {...} (the
-- default for every kind); match (for every kind); stall_seconds (default
-- 3); cut_from (the earliest reset_mid/truncate cut, a fraction of the
-- body, default 0); seed. Returns the configuration as the proxy understood it, or nil, err.
function Proxy:set(cfg)
  local function list(t) -- an array (an empty one goes out as {}, which the proxy reads the same)
    local l = {}
    for i, v in ipairs(t) do l[i] = v end
    return l
  end
  local copy = {}
  for k, v in pairs(cfg) do
    if k == "methods" and type(v) == "table" then
      copy[k] = list(v)
    elseif type(v) == "table" then
      local kv = {}
      for f, x in pairs(v) do kv[f] = (f == "methods" and type(x) == "table") and list(x) or x end
      copy[k] = kv
    else
      copy[k] = v
    end
  end
  return self:_request("POST", "/__faults", assert(cjson.encode(copy)))
end

function Proxy:config() return self:_request("GET", "/__faults") end
function Proxy:clear() return self:_request("DELETE", "/__faults") end
--- JSON numbers decode as floats on Lua 5.3+: counters read back as integers.
local function integers(t)
  for k, v in pairs(t) do
    if type(v) == "table" then
      integers(v)
    elseif math.type and math.type(v) == "float" and v == math.floor(v) then
      t[k] = math.tointeger(v)
    end
  end
  return t
end

function Proxy:stats()
  local t, err = self:_request("GET", "/__faults/stats")
  if not t then return nil, err end
  return integers(t)
end
function Proxy:reset_stats() return self:_request("DELETE", "/__faults/stats") end

--- Stops the proxy if this handle started it (or always, with force).
function Proxy:stop(force)
  self.transport:close()
  if self.started_here or force then return servers.sh(script() .. " stop") end
  return true
end

--- "requests 812, faults 143 (slowdown 80, internal 24, ...)" from stats.
function _M.describe(s)
  local kinds = {}
  local names = {}
  for k, n in pairs(s.faults or {}) do
    if n > 0 then names[#names + 1] = k end
  end
  table.sort(names)
  for _, k in ipairs(names) do kinds[#kinds + 1] = k .. " " .. s.faults[k] end
  return string.format("proxy saw %d requests, injected %d faults (%s)", s.requests or 0, s.faults_total or 0,
    #kinds > 0 and table.concat(kinds, ", ") or "none")
end

return _M
