-- Helpers shared by the vector handlers.
local _M = {}

--- Epoch seconds of a UTC civil date (no dependence on the local time zone).
function _M.epoch(y, m, d, hh, mm, ss)
  -- days_from_civil (Howard Hinnant's algorithm)
  y = (m <= 2) and (y - 1) or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + (hh or 0) * 3600 + (mm or 0) * 60 + (ss or 0)
end

--- "20150830T123600Z" or "2024-01-15T08:30:00.000Z" -> epoch seconds.
function _M.parse_time(s)
  local y, m, d, hh, mm, ss = s:match("^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
  if not y then
    y, m, d, hh, mm, ss = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)")
  end
  if not y then
    y, m, d = s:match("^(%d%d%d%d)(%d%d)(%d%d)$")
    hh, mm, ss = 0, 0, 0
  end
  assert(y, "unrecognised time " .. tostring(s))
  return _M.epoch(tonumber(y), tonumber(m), tonumber(d), tonumber(hh), tonumber(mm), tonumber(ss))
end

--- Splits a URL or path+query into (scheme://host + path, sorted list of
-- "k=v"), each part in canonical percent-encoding. Query parameter order and
-- the choice of which safe characters to escape carry no meaning for these
-- signatures, and the generators differ in both, so URLs compare as
-- canonical path + multiset of parameters.
function _M.split_url(u)
  local enc = require("objstore.core").encode
  local base, q = u:match("^([^?]*)%?(.*)$")
  base = base or u
  local origin, path = base:match("^(%a[%w+.-]*://[^/]*)(.*)$")
  if not origin then origin, path = "", base end
  local params = {}
  for part in (q or ""):gmatch("[^&]+") do
    local k, eq, v = part:match("^([^=]*)(=?)(.*)$")
    params[#params + 1] = enc.uri_encode(enc.uri_decode(k)) .. eq .. enc.uri_encode(enc.uri_decode(v))
  end
  table.sort(params)
  return origin .. enc.normalize_path(path), params
end

function _M.urls_equal(a, b)
  local ba, pa = _M.split_url(a)
  local bb, pb = _M.split_url(b)
  if ba ~= bb or #pa ~= #pb then return false end
  for i = 1, #pa do
    if pa[i] ~= pb[i] then return false end
  end
  return true
end

--- AWS docs print "Credential=...,SignedHeaders=..." where SDKs print ", ".
function _M.normalize_authorization(a)
  return (a:gsub(",%s+", ","))
end

function _M.headers_array(list)
  local out = {}
  for i, h in ipairs(list or {}) do out[i] = { h[1], h[2] } end
  return out
end

return _M
