--- GET /presign?key=K&method=M[&expires=S] -> {"url": ...}: a presigned URL
-- for GET, PUT, HEAD or DELETE of K in the demo bucket, valid S seconds
-- (1 to 604800, default 3600).
-- The hot path of the example (bench/openresty.sh): one argument parse,
-- no header written (default_type in nginx.conf is application/json) and
-- no ngx.exit (the handler just returns), and no JSON encoder for the
-- answer: a presigned URL is printable ASCII without '"' or '\' (every
-- byte of bucket, key, query and token percent-encoded; objstore.presign),
-- so '{"url":"' .. url .. '"}' is the JSON document cjson would make,
-- without cjson's byte-by-byte escaping pass (0.7 us of the ~4 us the
-- handler costs: bench/openresty_breakdown.sh).
local common = require "common"

common.authenticate()

local args = ngx.req.get_uri_args(16)
local key, method, expires = args.key, args.method, args.expires
if type(key) ~= "string" then return common.json(400, { error = "InvalidKey", message = "key=K is required" }) end
common.check_key(key)
if method == nil then
  method = "GET"
else
  method = type(method) == "string" and common.METHODS[method:upper()]
  if not method then
    return common.json(400, { error = "InvalidMethod", message = "method must be GET, PUT, HEAD or DELETE" })
  end
end
local opts
if expires ~= nil then
  expires = tonumber(expires)
  if not expires or expires ~= math.floor(expires) or expires < 1 or expires > 604800 then
    return common.json(400, { error = "InvalidExpires", message = "expires must be 1 to 604800 seconds" })
  end
  opts = { expires_in = expires }
end
-- No opts: objstore's default expiry, 3600 seconds.
local url, err = common.client():presign(method, common.config().bucket, key, opts)
if not url then return common.fail(err) end
ngx.say('{"url":"', url, '"}')
