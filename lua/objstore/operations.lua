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
local upload = require "objstore.transfer.upload"
local download = require "objstore.transfer.download"
local stream = require "objstore.transfer.stream"

local pairs, ipairs, error = pairs, ipairs, error

local registry = {}

for _, mod in ipairs{ bucket, object, list, multipart, upload, download, stream } do
  for name, entry in pairs(mod) do
    if registry[name] then error("objstore.operations: '" .. name .. "' is defined twice") end
    registry[name] = entry
  end
end

return registry
