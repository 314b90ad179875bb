-- One objstore transfer for bench/transfer.sh:
--   lua bench/transfer.lua up|down <bucket> <key> <path> [concurrency] [part_mib] [verify|noverify|checkpoint]
-- With "checkpoint" the upload keeps a checkpoint and appends to
-- $CKPT_STATS the checkpoint bytes written per part (its growth from the
-- first recorded part to the last, divided by the parts in between).
local objstore = require "objstore"

local mode, bucket, key, path = arg[1], arg[2], arg[3], arg[4]
local concurrency = tonumber(arg[5]) or 4
local part = (tonumber(arg[6]) or 8) * 1024 * 1024
local verify = arg[7] ~= "noverify"
local cp = arg[7] == "checkpoint" and (path .. ".objstore-cp") or nil
local lfs = require "lfs"
local first_size, last_size, counted = nil, nil, 0
local function on_part()
  local size = lfs.attributes(cp, "size")
  if not first_size then first_size = size else counted = counted + 1 end
  last_size = size
end
local c = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"),
  access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY") }
local res, err
if mode == "up" then
  res, err = c:upload_file(bucket, key, path, { part_size = part, concurrency = concurrency, verify = verify,
    checkpoint = cp, on_part = cp and on_part or nil })
else
  res, err = c:download_file(bucket, key, path, { part_size = part, concurrency = concurrency, verify = verify })
end
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
if cp and counted > 0 and os.getenv("CKPT_STATS") then
  local f = assert(io.open(os.getenv("CKPT_STATS"), "a"))
  f:write(("%.1f\n"):format((last_size - first_size) / counted))
  f:close()
end
