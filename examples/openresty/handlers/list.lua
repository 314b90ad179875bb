--- GET /list?prefix=P[&max=N][&token=T] -> {"keys": [{key, size, etag,
-- last_modified}], "count": n, "next": T | null}: one page of the listing (N from 1 to
-- 1000, default 100); pass `next` as token for the following page.
local common = require "common"

common.authenticate()

local args = ngx.req.get_uri_args(16)
local prefix, max, token = args.prefix, args.max, args.token
if prefix ~= nil and type(prefix) ~= "string" then
  return common.json(400, { error = "InvalidPrefix", message = "one prefix=P" })
end
if max ~= nil then
  max = tonumber(max)
  if not max or max ~= math.floor(max) or max < 1 or max > 1000 then
    return common.json(400, { error = "InvalidMax", message = "max must be 1 to 1000" })
  end
end
local c = common.client()
local res, err = c:list_objects(common.config().bucket, { prefix = prefix ~= "" and prefix or nil,
  max_keys = max or 100, continuation_token = type(token) == "string" and token or nil,
  deadline = common.config().deadline })
if not res then return common.fail(err) end
local keys = {}
for _, o in ipairs(res.contents or {}) do
  keys[#keys + 1] = { key = o.key, size = tonumber(o.size), etag = o.etag, last_modified = o.last_modified }
end
-- lua-cjson 2.1.0 writes an empty table as {}: "keys" is left out when
-- the page is empty; "count" is always there.
return common.json(200, { keys = #keys > 0 and keys or nil, count = #keys,
  next = res.is_truncated and res.next_continuation_token or ngx.null })
