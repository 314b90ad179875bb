--- objstore: object storage for Lua (Amazon S3, S3-compatible stores and
-- Alibaba Cloud OSS).
--
--   local objstore = require "objstore"
--   local client = objstore.new{ endpoint = "http://127.0.0.1:7480", access_key = ak, secret_key = sk }
--   local res, err = client:put_object("bucket", "key", "hello")
--
-- Submodules: objstore.signer (request signing), objstore.checksum (hashes
-- and CRCs), objstore.xml (response parsing), objstore.credentials,
-- objstore.errors.
local core = require "objstore.core"
local Client = require "objstore.client"

require("objstore.client.bucket")(Client)
require("objstore.client.object")(Client)
require("objstore.client.list")(Client)
require("objstore.client.multipart")(Client)
require("objstore.transfer.upload")(Client)
require("objstore.transfer.download")(Client)
require("objstore.transfer.stream")(Client)

local _M = { _VERSION = core._VERSION, Client = Client }

--- Creates a client; see objstore.client for the options.
function _M.new(opts)
  return Client.new(opts)
end

--- Several clients as one replicated store; see objstore.replicated.
function _M.replicated(opts)
  return require("objstore.replicated").new(opts)
end

return _M
