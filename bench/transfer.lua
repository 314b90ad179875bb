-- One objstore transfer for bench/transfer.sh:
--   lua bench/transfer.lua up|down <bucket> <key> <path> [concurrency] [part_mib] [verify]
local objstore = require "objstore"

local mode, bucket, key, path = arg[1], arg[2], arg[3], arg[4]
local concurrency = tonumber(arg[5]) or 4
local part = (tonumber(arg[6]) or 8) * 1024 * 1024
local verify = arg[7] ~= "noverify"
local c = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"),
  access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY") }
local res, err
if mode == "up" then
  res, err = c:upload_file(bucket, key, path, { part_size = part, concurrency = concurrency, verify = verify })
else
  res, err = c:download_file(bucket, key, path, { part_size = part, concurrency = concurrency, verify = verify })
end
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
