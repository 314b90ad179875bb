-- @lost: the request is forwarded whole (through the internal location
-- /__faultproxy_upstream, a subrequest that carries the client's method,
-- headers and body) and the server's answer is thrown away: the connection
-- closes without a byte of response. The server has acted (stored the
-- object, created the upload, completed it) but the client cannot know.
local state = require "faultproxy.state"

local ngx = ngx

local _M = {}

local METHOD = { GET = ngx.HTTP_GET, HEAD = ngx.HTTP_HEAD, PUT = ngx.HTTP_PUT, POST = ngx.HTTP_POST,
  DELETE = ngx.HTTP_DELETE, OPTIONS = ngx.HTTP_OPTIONS, PATCH = ngx.HTTP_PATCH }

function _M.run()
  ngx.req.read_body()
  local res = ngx.location.capture("/__faultproxy_upstream",
    { method = METHOD[ngx.req.get_method()] or ngx.HTTP_GET, always_forward_body = true })
  state.incr("ls:" .. tostring(res and res.status))
  return ngx.exit(444)
end

return _M
