-- Fault proxy state shared by every nginx worker: the fault configuration
-- (JSON in the lua_shared_dict "faults", decoded once per version per
-- worker) and the counters. See spec/support/faultproxy.sh for the
-- control API and the fault kinds.
local cjson = require "cjson.safe"

local ngx = ngx
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber

local _M = {}

local dict = ngx.shared.faults

--- Fault kinds in the order a request's random draw is matched against
-- them. `before`: decided and answered in the access phase, the request
-- never reaches the server. `body`: needs a response body (never on HEAD).
_M.KINDS = {
  { name = "slowdown", before = true },   -- 503 SlowDown XML
  { name = "internal", before = true },   -- 500 InternalError XML
  { name = "expired", before = true },    -- 400 ExpiredToken XML (the session token ran out)
  { name = "reset", before = true },      -- connection closed, no response
  { name = "stall", before = true },      -- sleep stall_seconds, then close
  { name = "reset_mid", body = true },    -- forwarded; headers + part of the body, then close
  { name = "lost" },                      -- forwarded; the server acted, the response never comes
  { name = "truncate", body = true },     -- forwarded; no Content-Length, body cut short, ends cleanly
}
local KIND = {}
for _, k in ipairs(_M.KINDS) do KIND[k.name] = k end
_M.KIND = KIND

local METHODS = { GET = true, PUT = true, POST = true, HEAD = true, DELETE = true, OPTIONS = true, PATCH = true }

local function method_set(list, where)
  if list == nil then return nil end
  if type(list) == "string" then list = { list } end
  if type(list) ~= "table" then return nil, where .. ": methods must be a list of method names" end
  local set, any = {}, false
  for _, m in ipairs(list) do
    if type(m) ~= "string" or not METHODS[m:upper()] then
      return nil, where .. ": unknown method " .. tostring(m)
    end
    set[m:upper()] = true
    any = true
  end
  if not any then return nil, where .. ": empty method list" end
  return set
end

function _M.pattern(p, where)
  if p == nil then return nil end
  if type(p) ~= "string" or not pcall(string.find, "", p) then return nil, where .. " must be a Lua pattern" end
  return p
end

--- Validates a configuration table and returns its normal form:
-- { rates = { kind = { rate, methods = set|nil } }, stall_seconds, seed,
--   methods = set|nil, path = pattern|nil } or nil, err.
function _M.normalize(cfg)
  if type(cfg) ~= "table" then return nil, "the configuration must be a JSON object" end
  local src = cfg.faults or cfg
  if type(src) ~= "table" then return nil, "faults must be an object" end
  local out = { rates = {}, stall_seconds = 3, methods = nil }
  local known = { faults = true, methods = true, stall_seconds = true, seed = true, match = true,
    retry_after = true, cut_from = true }
  for k in pairs(cfg) do
    if not known[k] and not KIND[k] then return nil, "unknown setting '" .. tostring(k) .. "'" end
  end
  if cfg.faults then
    for k in pairs(cfg.faults) do
      if not KIND[k] then return nil, "unknown fault kind '" .. tostring(k) .. "'" end
    end
  end
  local err
  out.methods, err = method_set(cfg.methods, "methods")
  if err then return nil, err end
  if cfg.stall_seconds ~= nil then
    local s = tonumber(cfg.stall_seconds)
    if not s or s < 0 or s > 60 then return nil, "stall_seconds must be 0..60" end
    out.stall_seconds = s
  end
  if cfg.cut_from ~= nil then
    -- The earliest point of a reset_mid or truncate cut, as a fraction of
    -- the body (default 0: anywhere): a spec that must see bytes move
    -- before the cut asks for a later one.
    local f = tonumber(cfg.cut_from)
    if not f or f < 0 or f >= 1 then return nil, "cut_from must be a fraction 0 <= f < 1" end
    out.cut_from = f
  end
  if cfg.retry_after ~= nil then
    -- Sent as Retry-After with SlowDown answers: delta-seconds or an HTTP date.
    if type(cfg.retry_after) ~= "string" and type(cfg.retry_after) ~= "number" then
      return nil, "retry_after must be seconds or an HTTP date"
    end
    out.retry_after = tostring(cfg.retry_after)
  end
  if cfg.seed ~= nil and not tonumber(cfg.seed) then return nil, "seed must be a number" end
  out.seed = tonumber(cfg.seed)
  out.match, err = _M.pattern(cfg.match, "match")
  if err then return nil, err end
  local total = 0
  for _, k in ipairs(_M.KINDS) do
    local v = src[k.name]
    if v ~= nil then
      local rate, methods, max, match = v, nil, nil, nil
      if type(v) == "table" then
        for f in pairs(v) do
          if f ~= "rate" and f ~= "methods" and f ~= "max" and f ~= "match" then
            return nil, k.name .. ": unknown setting '" .. tostring(f) .. "'"
          end
        end
        rate = v.rate
        methods, err = method_set(v.methods, k.name)
        if err then return nil, err end
        if v.max ~= nil then
          max = tonumber(v.max)
          if not max or max < 0 or max % 1 ~= 0 then return nil, k.name .. ": max must be a whole number" end
        end
        match, err = _M.pattern(v.match, k.name .. ": match")
        if err then return nil, err end
      end
      rate = tonumber(rate)
      if not rate or rate < 0 or rate > 1 then return nil, k.name .. ": rate must be a number 0..1" end
      if rate > 0 then
        out.rates[k.name] = { rate = rate, methods = methods, max = max, match = match }
        total = total + rate
      end
    end
  end
  if total > 1 + 1e-9 then return nil, "the fault rates add up to more than 1" end
  return out
end

--- The normal form back as plain JSON-able data (sets as lists).
function _M.describe(n)
  local function list(set)
    if not set then return nil end
    local t = {}
    for m in pairs(set) do t[#t + 1] = m end
    table.sort(t)
    return t
  end
  local faults = {}
  for name, r in pairs(n.rates) do
    faults[name] = { rate = r.rate, methods = list(r.methods), max = r.max, match = r.match }
  end
  return { faults = faults, methods = list(n.methods), stall_seconds = n.stall_seconds, seed = n.seed,
    match = n.match, cut_from = n.cut_from }
end

local cache_version, cache_cfg = -1, nil

--- The current configuration (normal form), or nil when no faults are set.
function _M.config()
  local v = dict:get("config_version") or 0
  if v ~= cache_version then
    local s = dict:get("config")
    cache_cfg = nil
    if s then
      local raw = cjson.decode(s)
      cache_cfg = raw and _M.normalize(raw) or nil
    end
    cache_version = v
  end
  return cache_cfg
end

function _M.set_config(raw)
  local n, err = _M.normalize(raw)
  if not n then return nil, err end
  local text, eerr = cjson.encode(raw)
  if not text then return nil, "cannot store the configuration: " .. tostring(eerr) end
  dict:set("config", text)
  dict:incr("config_version", 1, 0)
  if n.seed then
    math.randomseed(n.seed)
    dict:set("reseed", n.seed)
  end
  return n
end

function _M.clear_config()
  dict:delete("config")
  dict:incr("config_version", 1, 0)
end

function _M.incr(key, by)
  local v, err = dict:incr(key, by or 1, 0)
  if v and v < 0 then v = dict:incr(key, -v) end
  if not v then ngx.log(ngx.ERR, "faultproxy: counter ", key, ": ", err) end
  return v
end

--- Every counter, grouped: { requests, forwarded, methods = {}, faults = {}, statuses = {}, ... }
function _M.stats()
  local out = { requests = 0, forwarded = 0, methods = {}, faults = {}, statuses = {}, faults_by_method = {},
    lost_statuses = {} }
  for _, k in ipairs(_M.KINDS) do out.faults[k.name] = 0 end
  for _, key in ipairs(dict:get_keys(0)) do
    local v = dict:get(key)
    local group, name = key:match("^(%w+):(.+)$")
    if group == "n" then
      out[name] = v
    elseif group == "m" then
      out.methods[name] = v
    elseif group == "f" then
      out.faults[name] = v
    elseif group == "fm" then
      out.faults_by_method[name] = v
    elseif group == "s" then
      out.statuses[name] = v
    elseif group == "ls" then
      out.lost_statuses[name] = v
    end
  end
  local total = 0
  for _, v in pairs(out.faults) do total = total + v end
  out.faults_total = total
  return out
end

function _M.reset_stats()
  for _, key in ipairs(dict:get_keys(0)) do
    if key:find("^%w+:") then dict:delete(key) end
  end
end

return _M
