-- A small JSON codec for the fault proxy's control channel, shared by the
-- nginx side (LuaJIT) and the spec side (any Lua 5.1-5.4): objects, arrays,
-- strings, numbers, booleans, null. Enough for configs and counters; no
-- dependency on lua-cjson so the proxy needs only nginx + its Lua module.
local type, pairs, ipairs, tostring, tonumber, error = type, pairs, ipairs, tostring, tonumber, error
local concat, sort, format, byte, char, sub, find =
  table.concat, table.sort, string.format, string.byte, string.char, string.sub, string.find

local _M = {}

local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r',
  ['\t'] = '\\t' }

local function enc_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return ESC[c] or format("\\u%04x", byte(c)) end) .. '"'
end

local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k % 1 ~= 0 then return false end
    n = n + 1
  end
  return n == #t and (n > 0 or next(t) == nil and getmetatable(t) == _M.array_mt)
end

local function encode(v, out)
  local tv = type(v)
  if tv == "nil" then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    if v ~= v or v == math.huge or v == -math.huge then error("json: cannot encode " .. tostring(v)) end
    if v % 1 == 0 and v > -1e15 and v < 1e15 then
      out[#out + 1] = format("%d", v)
    else
      out[#out + 1] = format("%.14g", v)
    end
  elseif tv == "string" then
    out[#out + 1] = enc_string(v)
  elseif tv == "table" then
    if is_array(v) then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        encode(x, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = enc_string(k)
        out[#out + 1] = ":"
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        encode(x, out)
      end
      out[#out + 1] = "}"
    end
  else
    error("json: cannot encode a " .. tv)
  end
end

_M.array_mt = {}

function _M.encode(v)
  local out = {}
  encode(v, out)
  return concat(out)
end

local function skip(s, i)
  local _, e = find(s, "^[ \t\r\n]*", i)
  return e + 1
end

local decode_value

local function decode_string(s, i)
  -- s:sub(i, i) == '"'
  local out, j = {}, i + 1
  while true do
    local c = sub(s, j, j)
    if c == "" then error("json: unterminated string at " .. i) end
    if c == '"' then return concat(out), j + 1 end
    if c == "\\" then
      local e = sub(s, j + 1, j + 1)
      local map = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }
      if map[e] then
        out[#out + 1] = map[e]
        j = j + 2
      elseif e == "u" then
        local cp = tonumber(sub(s, j + 2, j + 5), 16)
        if not cp then error("json: bad \\u escape at " .. j) end
        if cp < 0x80 then
          out[#out + 1] = char(cp)
        elseif cp < 0x800 then
          out[#out + 1] = char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64)
        else
          out[#out + 1] = char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
        end
        j = j + 6
      else
        error("json: bad escape at " .. j)
      end
    else
      local _, e = find(s, '^[^"\\]+', j)
      out[#out + 1] = sub(s, j, e)
      j = e + 1
    end
  end
end

decode_value = function(s, i)
  i = skip(s, i)
  local c = sub(s, i, i)
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if sub(s, i, i) == "}" then return t, i + 1 end
    while true do
      i = skip(s, i)
      if sub(s, i, i) ~= '"' then error("json: expected a key at " .. i) end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if sub(s, i, i) ~= ":" then error("json: expected ':' at " .. i) end
      t[k], i = decode_value(s, i + 1)
      i = skip(s, i)
      local d = sub(s, i, i)
      if d == "}" then return t, i + 1 end
      if d ~= "," then error("json: expected ',' or '}' at " .. i) end
      i = i + 1
    end
  elseif c == "[" then
    local t = setmetatable({}, _M.array_mt)
    i = skip(s, i + 1)
    if sub(s, i, i) == "]" then return t, i + 1 end
    while true do
      t[#t + 1], i = decode_value(s, i)
      i = skip(s, i)
      local d = sub(s, i, i)
      if d == "]" then return t, i + 1 end
      if d ~= "," then error("json: expected ',' or ']' at " .. i) end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif sub(s, i, i + 3) == "true" then
    return true, i + 4
  elseif sub(s, i, i + 4) == "false" then
    return false, i + 5
  elseif sub(s, i, i + 3) == "null" then
    return nil, i + 4
  else
    local _, e = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if not e then error("json: unexpected character at " .. i) end
    return tonumber(sub(s, i, e)), e + 1
  end
end

--- Returns the value, or nil, err.
function _M.decode(s)
  if type(s) ~= "string" then return nil, "json: string expected" end
  local ok, v, i = pcall(decode_value, s, 1)
  if not ok then return nil, v end
  if skip(s, i) <= #s then return nil, "json: trailing characters at " .. i end
  return v
end

return _M
