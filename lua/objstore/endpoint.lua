--- Endpoints and addressing: where a request for (bucket, key) goes.
--   virtual-host style: https://bucket.host/key
--   path style:         https://host/bucket/key
-- AWS and OSS hosts default to virtual-host style (OSS refuses path style);
-- IP addresses, localhost and other hosts default to path style, which every
-- self-hosted S3 server accepts without DNS set-up.
local core = require "objstore.core"
local dialects = require "objstore.dialect"

local uri_encode = core.encode.uri_encode
local type, tonumber, ipairs = type, tonumber, ipairs

local _M = {}

-- A provider's dialect from its name (unknown names: S3's) or the dialect itself.
local function dialect_of(provider)
  if type(provider) == "table" then return provider end
  return dialects.get(provider) or dialects.s3
end

--- Parses "scheme://host[:port][/]" into a table, or returns nil, msg.
function _M.parse(url)
  if type(url) ~= "string" then return nil, "endpoint must be a string URL" end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.+)$")
  if not scheme then
    -- A bare host means https, as in the SDKs' endpoint settings.
    if url:match("^[%w.-]+[:%d]*/?$") and url ~= "" then
      scheme, rest = "https", url
    else
      return nil, "endpoint '" .. url .. "' is not a URL (scheme://host[:port])"
    end
  end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "endpoint '" .. url .. "': scheme must be http or https"
  end
  local hostport, path = rest:match("^([^/?#]*)(.*)$")
  if path ~= "" and path ~= "/" then
    return nil, "endpoint '" .. url .. "' must not have a path, query or fragment"
  end
  local host, port
  if hostport:sub(1, 1) == "[" then
    host, port = hostport:match("^(%[[%x:.]+%])(.*)$")
  else
    host, port = hostport:match("^([^:]*)(.*)$")
  end
  if not host or host == "" or not host:match("^[%w.%-%[%]:]+$") then
    return nil, "endpoint '" .. url .. "' has no valid host"
  end
  if port ~= "" then
    port = port:match("^:(%d+)$")
    if not port or tonumber(port) < 1 or tonumber(port) > 65535 then
      return nil, "endpoint '" .. url .. "' has an invalid port"
    end
  else
    port = nil
  end
  host = host:lower()
  local default_port = (scheme == "https") and "443" or "80"
  local hp = host
  if port and port ~= default_port then hp = host .. ":" .. port end
  return { scheme = scheme, host = host, port = port and tonumber(port) or tonumber(default_port), hostport = hp,
    url = scheme .. "://" .. hp }
end

--- The default addressing of an endpoint for a provider (a name or its
-- dialect): "virtual" where the provider serves no path-style requests
-- or the host is one of its `virtual_hosts`, else "path".
function _M.default_addressing(ep, provider)
  local d = dialect_of(provider)
  if not d.path_style then return "virtual" end
  for _, pattern in ipairs(d.virtual_hosts or {}) do
    if ep.host:match(pattern) then return "virtual" end
  end
  return "path"
end

--- A bucket that can be a DNS label under the endpoint host (and under a
-- TLS wildcard certificate: no dots for https).
function _M.dns_compatible(bucket, scheme)
  if #bucket < 3 or #bucket > 63 or not bucket:match("^[a-z0-9][a-z0-9.-]*[a-z0-9]$") then return false end
  if bucket:find("..", 1, true) or bucket:match("^%d+%.%d+%.%d+%.%d+$") then return false end
  if scheme == "https" and bucket:find(".", 1, true) then return false end
  return true
end

--- Default endpoint URL for a provider (a name or its dialect) and region.
function _M.default_url(provider, region)
  return dialect_of(provider).endpoint_url(region)
end

--- Host (with port) and addressing style ("virtual" or "path") of a
-- request for `bucket`: the one choice of both, which `locate` (and a
-- signer that builds the path from bucket and key itself) follows.
function _M.host(ep, addressing, bucket)
  if bucket and addressing == "virtual" and _M.dns_compatible(bucket, ep.scheme) then
    return bucket .. "." .. ep.hostport, "virtual"
  end
  return ep.hostport, "path"
end

--- Host (with port) and encoded path for a request.
-- Returns hostport, path, style.
function _M.locate(ep, addressing, bucket, key)
  local hostport, style = _M.host(ep, addressing, bucket)
  local path
  if style == "virtual" then
    path = "/" .. (key and uri_encode(key, true) or "")
  elseif bucket then
    path = "/" .. uri_encode(bucket) .. "/" .. (key and uri_encode(key, true) or "")
    if not key then path = "/" .. uri_encode(bucket) end
  else
    path = "/"
  end
  return hostport, path, style
end

return _M
