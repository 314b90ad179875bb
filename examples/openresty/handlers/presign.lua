--- GET /presign?key=K&method=M[&expires=S] -> {"url": ...}: a presigned URL
-- for GET, PUT, HEAD or DELETE of K in the demo bucket, valid S seconds
-- (1 to 604800, default 3600).
local common = require "common"

common.authenticate()

local METHODS = { GET = true, PUT = true, HEAD = true, DELETE = true }

local args = ngx.req.get_uri_args(16)
local key, method, expires = args.key, (args.method or "GET"), args.expires
if type(key) ~= "string" then return common.json(400, { error = "InvalidKey", message = "key=K is required" }) end
common.check_key(key)
if type(method) ~= "string" or not METHODS[method:upper()] then
  return common.json(400, { error = "InvalidMethod", message = "method must be GET, PUT, HEAD or DELETE" })
end
if expires ~= nil then
  expires = tonumber(expires)
  if not expires or expires ~= math.floor(expires) or expires < 1 or expires > 604800 then
    return common.json(400, { error = "InvalidExpires", message = "expires must be 1 to 604800 seconds" })
  end
end
local c = common.client()
local url, err = c:presign(method:upper(), common.config().bucket, key, { expires = expires or 3600 })
if not url then return common.fail(err) end
return common.json(200, { url = url })
