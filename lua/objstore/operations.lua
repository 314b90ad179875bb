--- The one table of operations. Each entry is
--   build(client, ...) -> request record   (one request: what it sends and
--                                           how its answer is read), and/or
--   call(client, ...)  -> result | nil, err (an operation of several
--                                           requests, or none to prepare)
-- objstore.client generates a method per entry: `call` when there is one,
-- else sending what `build` describes; `client:prepare(name, ...)` signs
-- what `build` describes without sending it.
local pairs, error = pairs, error

local registry = {}

for _, mod in pairs{ "objstore.ops.bucket", "objstore.ops.object", "objstore.ops.list", "objstore.ops.multipart",
  "objstore.transfer.upload", "objstore.transfer.download", "objstore.transfer.stream" } do
  for name, entry in pairs(require(mod)) do
    if registry[name] then error("objstore.operations: '" .. name .. "' is defined twice") end
    registry[name] = entry
  end
end

return registry
