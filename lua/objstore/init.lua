--- objstore: object storage for Lua (Amazon S3, S3-compatible stores and
-- Alibaba Cloud OSS).
--
--   local objstore = require "objstore"
--   local client = objstore.new{ endpoint = "http://127.0.0.1:7480", access_key = ak, secret_key = sk }
--   local res, err = client:put_object("bucket", "key", "hello")
--
-- Submodules: objstore.client (the client and its operations),
-- objstore.request (request records), objstore.signer (request signing),
-- objstore.checksum (hashes and CRCs), objstore.xml (response parsing),
-- objstore.credentials, objstore.errors, objstore.transport (the contract
-- every transport meets). Reachable from here: objstore.credentials,
-- objstore.sts, objstore.metrics (modules), objstore.sync/check/replicated
-- (functions).
local core = require "objstore.core"
local Client = require "objstore.client"
local replicated = require "objstore.replicated"
local sync = require "objstore.sync"
local credentials = require "objstore.credentials"
local sts = require "objstore.sts"
local metrics = require "objstore.metrics"

local _M = { _VERSION = core._VERSION, Client = Client, credentials = credentials, sts = sts, metrics = metrics }

--- Creates a client; see objstore.client for the options.
function _M.new(opts)
  return Client.new(opts)
end

--- Several clients as one replicated store; see objstore.replicated.
function _M.replicated(opts)
  return replicated.new(opts)
end

--- Directory sync; see objstore.sync.
function _M.sync(client, src, dst, opts)
  return sync.sync(client, src, dst, opts)
end

--- What a sync would change, without changing it; see objstore.sync.
function _M.check(client, src, dst, opts)
  return sync.check(client, src, dst, opts)
end

return _M
