--- /files/<key>: GET streams the object to the caller with
-- objstore.openresty.serve_object (Range and If-* passed through to the store,
-- its status and headers passed back: 206 with Content-Range, 304, 412,
-- 416 as the store answers), PUT streams the request body
-- into the store (multipart above the threshold; an upload the client
-- aborts is aborted on the store: no object, no upload left), HEAD gives
-- the headers, DELETE removes it.
local common = require "common"
local onx = require "objstore.openresty"

local c = common.client()
local cfg = common.config()
local key = common.key_from_uri("/files/")
local method = ngx.req.get_method()

if method == "GET" or method == "HEAD" then
  -- One request to the store: its status and headers (200/206/304,
  -- Content-Length, ETag, Content-Range...) are sent on before the body;
  -- a store that fails mid-body resets the connection (the client sees a
  -- failed transfer, never a short body as the object).
  local res, err = onx.serve_object(c, cfg.bucket, key, { log_prefix = "objstore-demo: " })
  if not res then return common.fail(err) end
  return
elseif method == "PUT" then
  local res, err = onx.put_request_body(c, cfg.bucket, key, { multipart_threshold = cfg.threshold,
    part_size = cfg.part_size, concurrency = 2, content_type = ngx.var.http_content_type })
  if not res then
    if err and err.code == "UploadStream" then err.code = "UploadFailed" end
    return common.fail(err)
  end
  return common.json(200, { key = key, etag = res.etag, size = res.size, parts = res.parts or 1,
    spooled = res.spooled or false })
elseif method == "DELETE" then
  local res, err = c:delete_object(cfg.bucket, key)
  if not res then return common.fail(err) end
  return ngx.exit(204)
end
ngx.header["Allow"] = "GET, HEAD, PUT, DELETE"
return common.json(405, { error = "MethodNotAllowed", message = method .. " is not supported on /files/" })
