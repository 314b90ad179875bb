--- access_by_lua for /gateway/<key>: signs the request for the store
-- (client:sign_for_proxy, UNSIGNED-PAYLOAD) and lets nginx's proxy_pass
-- stream the body both ways; GET, HEAD and PUT. An allow-list: the store
-- gets only the headers that were signed (Range, conditionals and an
-- upload's entity headers pass through, signed); every other header the
-- caller sent is cleared before nginx forwards the request. The caller's
-- headers are read whole or not at all: a request with more than
-- MAX_HEADERS is refused (431), since a header past the limit of
-- ngx.req.get_headers would be neither signed nor cleared.
local common = require "common"

local MAX_HEADERS = 100

common.authenticate()
local key = common.key_from_uri("/gateway/")
local method = ngx.req.get_method()
if method ~= "GET" and method ~= "HEAD" and method ~= "PUT" then
  ngx.header["Allow"] = "GET, HEAD, PUT"
  return common.json(405, { error = "MethodNotAllowed", message = method .. " is not supported on /gateway/" })
end
local incoming, truncated = ngx.req.get_headers(MAX_HEADERS)
if truncated then
  return common.json(431, { error = "TooManyHeaders", message = "at most " .. MAX_HEADERS .. " request headers" })
end
local c = common.client()
local p, err = c:sign_for_proxy(method, common.config().bucket, key, { headers = incoming })
if not p then return common.fail(err) end
for _, name in ipairs(p.clear) do ngx.req.clear_header(name) end
for name, value in pairs(p.headers) do
  if name ~= "Host" then ngx.req.set_header(name, value) end
end
ngx.var.gateway_host = p.headers.Host
ngx.var.gateway_url = p.url
