-- Bucket chores for the benchmark scripts, through objstore itself:
--   lua bench/admin.lua create <bucket> | presign <bucket> <METHOD> <key> | cleanup <bucket>
local objstore = require "objstore"

local c = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"),
  access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY") }
local cmd, bucket = arg[1], arg[2]
if cmd == "create" then
  assert(c:create_bucket(bucket))
elseif cmd == "presign" then
  print(assert(c:presign(arg[3], bucket, arg[4], { expires_in = 3600 })))
elseif cmd == "cleanup" then
  local keys = {}
  for obj in c:list_objects_iter(bucket) do
    if obj then keys[#keys + 1] = obj.key end
  end
  if #keys > 0 then assert(c:delete_objects(bucket, keys)) end
  c:abort_incomplete_uploads(bucket)
  assert(c:delete_bucket(bucket))
else
  error("usage: admin.lua create|presign|cleanup <bucket> ...")
end
