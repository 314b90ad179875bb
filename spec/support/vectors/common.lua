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

--- JavaScript's String(v) for the scalar values SDK inputs hold: numbers
-- print as JS prints them (5, not 5.0, whatever cjson returns on this Lua).
function _M.js_string(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    if v ~= v then return "NaN" end
    if v == math.huge then return "Infinity" end
    if v == -math.huge then return "-Infinity" end
    if v == math.floor(v) and math.abs(v) < 1e21 then return string.format("%.0f", v) end
    for digits = 1, 17 do
      local s = string.format("%." .. digits .. "g", v)
      if tonumber(s) == v then
        local m, e = s:match("^(-?[%d.]+)e([-+]%d+)$")
        if not m then return s end
        e = tonumber(e)
        if e >= -6 and e < 21 then return (string.format("%." .. math.max(0, digits - 1 - e) .. "f", v)) end
        return m .. "e" .. (e < 0 and "-" or "+") .. math.abs(e)
      end
    end
  end
  error("not a scalar: " .. t)
end

--- JSON.stringify of a string.
function _M.js_json_string(s)
  local esc = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
    ["\r"] = "\\r", ["\t"] = "\\t" }
  return '"' .. s:gsub('[%c"\\]', function(c)
    return esc[c] or (c:byte() < 32 and string.format("\\u%04x", c:byte())) or c
  end) .. '"'
end

--- JavaScript's encodeURI.
function _M.js_encode_uri(s)
  return (s:gsub("[^%w;,/%?:@&=%+%$%-_%.!~%*'%(%)#]", function(c) return string.format("%%%02X", c:byte()) end))
end

local JSON_ESCAPES = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }

-- Key order of the objects decode_ordered made (weak: no leak).
local key_order = setmetatable({}, { __mode = "k" })

--- The keys of a decoded JSON object in document order when it came from
-- decode_ordered, else sorted (what cjson gives keeps no order).
function _M.keys(t)
  if key_order[t] then
    local out = {}
    for i, k in ipairs(key_order[t]) do out[i] = k end
    return out
  end
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out, function(a, b) return tostring(a) < tostring(b) end)
  return out
end

--- A JSON decoder that records each object's key order (see keys): for the
-- few places where an SDK serialises an object in insertion order. null
-- decodes to the given sentinel.
function _M.decode_ordered(text, null)
  local pos = 1
  local function fail(msg) error(string.format("JSON at byte %d: %s", pos, msg), 0) end
  local function ws() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local function utf8(cp)
    if cp < 0x80 then return string.char(cp) end
    if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
    if cp < 0x10000 then
      return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
    end
    return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
      0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local s, e = text:find('["\\]', pos)
      if not s then fail("unterminated string") end
      out[#out + 1] = text:sub(pos, s - 1)
      pos = e + 1
      if text:sub(s, s) == '"' then return table.concat(out) end
      local c = text:sub(pos, pos)
      if JSON_ESCAPES[c] then
        out[#out + 1] = JSON_ESCAPES[c]
        pos = pos + 1
      elseif c == "u" then
        local cp = tonumber(text:sub(pos + 1, pos + 4), 16) or fail("bad \\u escape")
        pos = pos + 5
        if cp >= 0xD800 and cp < 0xDC00 and text:sub(pos, pos + 1) == "\\u" then
          local lo = tonumber(text:sub(pos + 2, pos + 5), 16)
          if lo and lo >= 0xDC00 and lo < 0xE000 then
            cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
            pos = pos + 6
          end
        end
        out[#out + 1] = utf8(cp)
      else
        fail("bad escape")
      end
    end
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      local t, order = {}, {}
      key_order[t] = order
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        if text:sub(pos, pos) ~= '"' then fail("object key expected") end
        local k = str()
        ws()
        if text:sub(pos, pos) ~= ":" then fail("':' expected") end
        pos = pos + 1
        if t[k] == nil then order[#order + 1] = k end
        t[k] = value()
        ws()
        c = text:sub(pos, pos)
        pos = pos + 1
        if c == "}" then return t end
        if c ~= "," then fail("',' or '}' expected") end
      end
    elseif c == "[" then
      local t = {}
      pos = pos + 1
      ws()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value()
        ws()
        c = text:sub(pos, pos)
        pos = pos + 1
        if c == "]" then return t end
        if c ~= "," then fail("',' or ']' expected") end
      end
    elseif c == '"' then
      return str()
    end
    if text:sub(pos, pos + 3) == "true" then pos = pos + 4; return true end
    if text:sub(pos, pos + 4) == "false" then pos = pos + 5; return false end
    if text:sub(pos, pos + 3) == "null" then pos = pos + 4; return null end
    local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not num or num == "" then fail("value expected") end
    pos = pos + #num
    return tonumber(num) or fail("bad number")
  end
  local v = value()
  ws()
  if pos <= #text then fail("trailing characters") end
  return v
end

return _M
