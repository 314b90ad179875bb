--- access_by_lua for /gateway/<key>: signs the request for the store
-- (client:sign_for_proxy, UNSIGNED-PAYLOAD) and lets nginx's proxy_pass
-- stream the body both ways; GET, HEAD and PUT; Range and conditional
-- headers pass through, the caller's Authorization and x-amz-* headers
-- are removed before nginx forwards the request.
local common = require "common"

common.authenticate()
local key = common.key_from_uri("/gateway/")
local method = ngx.req.get_method()
if method ~= "GET" and method ~= "HEAD" and method ~= "PUT" then
  ngx.header["Allow"] = "GET, HEAD, PUT"
  return common.json(405, { error = "MethodNotAllowed", message = method .. " is not supported on /gateway/" })
end
local c = common.client()
local p, err = c:sign_for_proxy(method, common.config().bucket, key, { headers = ngx.req.get_headers(100) })
if not p then return common.fail(err) end
for _, name in ipairs(p.clear) do ngx.req.clear_header(name) end
for name, value in pairs(p.headers) do
  if name ~= "Host" then ngx.req.set_header(name, value) end
end
ngx.var.gateway_host = p.headers.Host
ngx.var.gateway_url = p.url
