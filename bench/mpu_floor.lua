-- The server's multipart floor for bench/transfer.sh: the same parts sent
-- by plain curl processes. `start` creates the upload and prints one line
-- "<part file> <presigned UploadPart URL>" per part; `finish` completes it
-- from ListParts. Between them the shell runs `curl -T` in parallel.
--   lua bench/mpu_floor.lua start <bucket> <key> <part_dir> | finish <bucket> <key> <upload_id>
local objstore = require "objstore"
local lfs = require "lfs"

local c = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"),
  access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY") }
local cmd, bucket, key = arg[1], arg[2], arg[3]
if cmd == "start" then
  local dir = arg[4]
  local files = {}
  for f in lfs.dir(dir) do
    if f:match("^part%d+$") then files[#files + 1] = f end
  end
  table.sort(files)
  local up = assert(c:create_multipart_upload(bucket, key))
  io.stderr:write(up.upload_id, "\n")
  for i, f in ipairs(files) do
    print(dir .. "/" .. f, assert(c:presign("PUT", bucket, key, { expires_in = 3600,
      query = { partNumber = tostring(i), uploadId = up.upload_id } })))
  end
elseif cmd == "finish" then
  local upload_id = arg[4]
  local listed = assert(c:list_parts(bucket, key, upload_id))
  local parts = {}
  for i, p in ipairs(listed.parts) do parts[i] = { part_number = tonumber(p.part_number), etag = p.etag } end
  assert(c:complete_multipart_upload(bucket, key, upload_id, parts))
else
  error("usage: mpu_floor.lua start|finish ...")
end
