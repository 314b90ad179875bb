--- /files/<key>: GET streams the object to the caller (Range passed
-- through: 206 with Content-Range, 416 when unsatisfiable; one range;
-- several are answered whole, as HTTP allows), PUT streams the request body
-- into the store (multipart above the threshold; an upload the client
-- aborts is aborted on the store: no object, no upload left), HEAD gives
-- the headers, DELETE removes it.
local common = require "common"
local onx = require "objstore.ngx"

local c = common.client()
local cfg = common.config()
local key = common.key_from_uri("/files/")
local method = ngx.req.get_method()

-- "bytes=a-b" | "bytes=a-" | "bytes=-n" against size: first, last | "bad" | nil (whole).
local function parse_range(h, size)
  if not h then return nil end
  local spec = h:match("^%s*bytes%s*=%s*(.-)%s*$")
  if not spec or spec:find(",", 1, true) then return nil end
  local a, b = spec:match("^(%d*)%-(%d*)$")
  if not a or (a == "" and b == "") then return nil end
  local first, last
  if a == "" then
    local n = tonumber(b)
    if n == 0 then return "bad" end
    first, last = math.max(size - n, 0), size - 1
  else
    first = tonumber(a)
    last = b ~= "" and math.min(tonumber(b), size - 1) or size - 1
    if b ~= "" and tonumber(b) < first then return nil end
  end
  if first >= size then return "bad" end
  return first, last
end

if method == "GET" or method == "HEAD" then
  local info, err = c:head_object(cfg.bucket, key, { deadline = cfg.deadline })
  if not info then return common.fail(err) end
  local size = info.content_length or 0
  local first, last = parse_range(ngx.var.http_range, size)
  ngx.header["Accept-Ranges"] = "bytes"
  ngx.header["ETag"] = info.etag
  ngx.header["Last-Modified"] = info.last_modified
  ngx.header["Content-Type"] = info.content_type or "application/octet-stream"
  if first == "bad" then
    ngx.header["Content-Range"] = "bytes */" .. size
    return common.json(416, { error = "InvalidRange", message = "the range is outside the object" })
  end
  if first then
    ngx.status = 206
    ngx.header["Content-Range"] = "bytes " .. first .. "-" .. last .. "/" .. size
    ngx.header["Content-Length"] = last - first + 1
  else
    ngx.status = 200
    ngx.header["Content-Length"] = size
  end
  if method == "HEAD" or size == 0 then return ngx.exit(ngx.status) end
  -- Pinned to the ETag seen: an object replaced meanwhile fails (412)
  -- instead of mixing two versions under the headers already chosen.
  local res, gerr = c:get_object(cfg.bucket, key, { range = first and { first, last } or nil,
    if_match = info.etag, sink = onx.response_sink() })
  if not res then
    -- Headers are out: cut the connection so the client sees a short body.
    ngx.log(ngx.WARN, "objstore-demo: download of ", key, " failed: ", tostring(gerr and gerr.message))
    return ngx.exit(ngx.ERROR)
  end
  return ngx.exit(ngx.status)
elseif method == "PUT" then
  local res, err = onx.put_request_body(c, cfg.bucket, key, { threshold = cfg.threshold,
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
