--- header_filter_by_lua for /gateway/: the store's x-amz-* response
-- headers (request ids, encryption, versions …) are not shown to callers.
local common = require "common"
local h = ngx.resp.get_headers(200)
for _, name in ipairs(common.client():hidden_response_headers(h)) do ngx.header[name] = nil end
