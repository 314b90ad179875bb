--- Endpoints and addressing: where a request for (bucket, key) goes.
--   virtual-host style: https://bucket.host/key
--   path style:         https://host/bucket/key
-- AWS and OSS hosts default to virtual-host style (OSS refuses path style);
-- IP addresses, localhost and other hosts default to path style, which every
-- self-hosted S3 server accepts without DNS set-up.
local core = require "objstore.core"
local dialects = require "objstore.engine.dialect"
local url_mod = require "objstore.url"

local uri_encode = core.encode.uri_encode
local type, ipairs = type, ipairs

local _M = {}

-- A provider's dialect from its name (unknown names: S3's) or the dialect itself.
local function dialect_of(provider)
  if type(provider) == "table" then return provider end
  return dialects.get(provider) or dialects.s3
end

--- Parses "scheme://host[:port][/]" into a table, or returns nil, msg.
function _M.parse(u)
  if type(u) ~= "string" then return nil, "endpoint must be a string URL" end
  local given = u
  if not u:match("^%a[%w+.-]*://.") then
    -- A bare host means https, as in the SDKs' endpoint settings.
    if u:match("^[%w.-]+[:%d]*/?$") and u ~= "" then
      u = "https://" .. u
    else
      return nil, "endpoint '" .. given .. "' is not a URL (scheme://host[:port])"
    end
  end
  local scheme = u:match("^(%a[%w+.-]*)://"):lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "endpoint '" .. given .. "': scheme must be http or https"
  end
  if not u:match("^%a[%w+.-]*://[^/?#]*/?$") then
    return nil, "endpoint '" .. given .. "' must not have a path, query or fragment"
  end
  local p, why = url_mod.parse(u)
  if not p and (why == "malformed port" or why == "port out of range") then
    return nil, "endpoint '" .. given .. "' has an invalid port"
  end
  if not p or p.userinfo or not (p.ipv6 or p.host:match("^[%w.%-]+$")) then
    return nil, "endpoint '" .. given .. "' has no valid host"
  end
  local host = p.host:lower()
  if p.ipv6 then host = "[" .. host .. "]" end
  local default_port = (scheme == "https") and 443 or 80
  local hp = host
  if p.port and p.port ~= default_port then hp = host .. ":" .. p.port end
  return { scheme = scheme, host = host, port = p.port or default_port, hostport = hp, url = scheme .. "://" .. hp }
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
