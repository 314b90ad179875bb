--- GET /list?prefix=P[&max=N][&token=T] -> {"keys": [{key, size, etag,
-- last_modified}], "count": n, "next": T | null[, "skipped": n]}: one page of the
-- listing (N from 1 to 1000, default 100); pass `next` as token for the
-- following page; "skipped" counts keys left out for not being valid UTF-8.
local common = require "common"
local request = require "objstore.engine.request"

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
-- A key that is not a valid key (invalid UTF-8, overlong forms, a NUL: a
-- store's EncodingType=url answer can decode to any bytes) is left out and
-- counted in "skipped": lua-cjson would write its bytes as they are, and the
-- answer would not be JSON (RFC 8259 wants UTF-8).
local keys, skipped = {}, 0
for _, o in ipairs(res.contents or {}) do
  if request.key_problem(o.key) then
    skipped = skipped + 1
  else
    keys[#keys + 1] = { key = o.key, size = tonumber(o.size), etag = o.etag, last_modified = o.last_modified }
  end
end
if skipped > 0 then
  ngx.log(ngx.WARN, "objstore-demo: the store listed ", skipped, " key(s) that are not valid UTF-8 (left out)")
end
-- lua-cjson 2.1.0 writes an empty table as {}: "keys" is left out when
-- the page is empty; "count" is always there.
return common.json(200, { keys = #keys > 0 and keys or nil, count = #keys, skipped = skipped > 0 and skipped or nil,
  next = res.is_truncated and res.next_continuation_token or ngx.null })
