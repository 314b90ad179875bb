--- The one table of operations. Each entry is
--   build(client, ...) -> request record   (one request: what it sends and
--                                           how its answer is read), and/or
--   call(client, ...)  -> result | nil, err (an operation of several
--                                           requests, or none to prepare)
-- objstore.client generates a method per entry: `call` when there is one,
-- else sending what `build` describes; `client:prepare(name, ...)` signs
-- what `build` describes without sending it.
local bucket = require "objstore.ops.bucket"
local object = require "objstore.ops.object"
local list = require "objstore.ops.list"
local multipart = require "objstore.ops.multipart"
local tagging = require "objstore.ops.tagging"
local upload_file = require "objstore.transfer.upload_file"
local download_file = require "objstore.transfer.download_file"
local upload_stream = require "objstore.transfer.upload_stream"
local copy_large = require "objstore.transfer.copy_large"
local incomplete = require "objstore.transfer.incomplete"

local pairs, ipairs, error = pairs, ipairs, error

local registry = {}

for _, mod in ipairs{ bucket, object, list, multipart, tagging, upload_file, download_file, upload_stream, copy_large,
  incomplete } do
  for name, entry in pairs(mod) do
    if registry[name] then error("objstore.operations: '" .. name .. "' is defined twice") end
    registry[name] = entry
  end
end

return registry
