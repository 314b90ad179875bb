--- URLs: the one parser and the one query encoder and decoder of objstore.
-- Endpoints, the ngx transport, credential URLs (container, metadata, STS)
-- and presigned forms all read URLs here, so they all read them the same
-- way (RFC 3986 generic syntax, absolute URLs only). Percent-encoding is
-- the C core's (`core.encode.uri_encode`/`uri_decode`, RFC 3986
-- unreserved characters kept). The signing canonicalisation is the C
-- signer's own and does not come through here.
local core = require "objstore.core"

local type, tonumber, tostring, pairs, ipairs = type, tonumber, tostring, pairs, ipairs
local concat, sort = table.concat, table.sort
local lower = string.lower

local uri_encode, uri_decode = core.encode.uri_encode, core.encode.uri_decode

local _M = { _VERSION = core._VERSION }

--- parse(url) -> parts | nil, why
-- Splits an absolute URL "scheme://[userinfo@]host[:port][/path][?query][#fragment]":
--   scheme: lower-cased ("HTTP://" reads as http);
--   userinfo: the text before the last "@" of the authority, or nil;
--   host: as written, without the brackets of an IPv6 literal (ipv6 = true);
--   port: a number from 1 to 65535, or nil when the URL has none;
--   path: as written, percent-encoded ("" when there is none);
--   query, fragment: as written after "?" and "#", or nil;
--   authority: the text between "//" and the path, as written.
-- Refuses (nil, why): no "scheme://", an empty host, a port that is not
-- digits or out of range, a malformed IPv6 literal. It does not judge the
-- scheme or the host's characters: each caller has its own rules.
function _M.parse(url)
  if type(url) ~= "string" then return nil, "not a URL" end
  local scheme, authority, rest = url:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil, "not an absolute URL (scheme://host)" end
  local path, query, fragment = rest, nil, nil
  local hash = rest:find("#", 1, true)
  if hash then path, fragment = rest:sub(1, hash - 1), rest:sub(hash + 1) end
  local qmark = path:find("?", 1, true)
  if qmark then path, query = path:sub(1, qmark - 1), path:sub(qmark + 1) end
  local parts = { scheme = lower(scheme), authority = authority, path = path, query = query, fragment = fragment }
  local hostport = authority
  local at = authority:match("^.*()@")
  if at then
    parts.userinfo = authority:sub(1, at - 1)
    hostport = authority:sub(at + 1)
  end
  local host, port
  if hostport:sub(1, 1) == "[" then
    host, port = hostport:match("^%[([%x:.]+)%](.*)$")
    if not host then return nil, "malformed IPv6 host" end
    parts.ipv6 = true
  else
    host, port = hostport:match("^([^:]*)(.*)$")
  end
  if host == "" then return nil, "no host" end
  if port ~= "" then
    port = port:match("^:(%d+)$")
    if not port then return nil, "malformed port" end
    port = tonumber(port)
    if port < 1 or port > 65535 then return nil, "port out of range" end
    parts.port = port
  end
  parts.host = host
  return parts
end

--- The host as it goes into a URL or a Host header: brackets around an
-- IPv6 literal, ":port" when given and not the scheme's default.
function _M.hostport(parts)
  local h = parts.ipv6 and ("[" .. parts.host .. "]") or parts.host
  local default = parts.scheme == "https" and 443 or (parts.scheme == "http" and 80 or nil)
  if parts.port and parts.port ~= default then h = h .. ":" .. tostring(parts.port) end
  return h
end

--- encode_query(q) -> string
-- Encodes a query table: { name = value | true } or an array of
-- { name, value } pairs; `true` (or a missing value) makes a value-less
-- sub-resource like "?uploads", `false` leaves the name out. Names and
-- values are percent-encoded; the pairs are sorted, so one query gives one
-- string (nil gives "").
function _M.encode_query(q)
  if not q then return "" end
  local parts = {}
  local function add(k, v)
    if v == false then return end
    parts[#parts + 1] = (v == true or v == nil) and uri_encode(k) or (uri_encode(k) .. "=" .. uri_encode(tostring(v)))
  end
  if q[1] ~= nil then
    for _, kv in ipairs(q) do add(kv[1], kv[2]) end
  else
    for k, v in pairs(q) do add(k, v) end
  end
  sort(parts)
  return concat(parts, "&")
end

--- encode_form(list) -> string
-- An application/x-www-form-urlencoded body from { {name, value}, ... },
-- in the order given, spaces as "+" (as botocore writes them).
function _M.encode_form(list)
  local parts = {}
  for i, kv in ipairs(list) do
    parts[i] = (uri_encode(kv[1]):gsub("%%20", "+")) .. "=" .. (uri_encode(tostring(kv[2])):gsub("%%20", "+"))
  end
  return concat(parts, "&")
end

--- decode_query(s[, raw]) -> { {name, value}, ... }
-- The pairs of a query string in their order; a name without "=" gets
-- the value true ("uploads"), "name=" the value "". Decoded, unless `raw`
-- (then names and values stay as written, for a signature computed over
-- the encoded form). Empty pairs ("a=1&&b=2") are skipped.
function _M.decode_query(s, raw)
  local list = {}
  for pair in (s or ""):gmatch("[^&]+") do
    local k, eq, v = pair:match("^([^=]*)(=?)(.*)$")
    if raw then
      list[#list + 1] = { k, v }
    else
      list[#list + 1] = { uri_decode(k), eq == "" and true or uri_decode(v) }
    end
  end
  return list
end

return _M
