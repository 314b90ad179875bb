-- Quickstart: a bucket, an upload, a listing, a download and a presigned
-- URL against an S3 server. `make demo` starts a local Ceph radosgw and runs
-- this with its address and keys in the environment:
--   OBJSTORE_TEST_ENDPOINT, OBJSTORE_TEST_ACCESS_KEY, OBJSTORE_TEST_SECRET_KEY
local objstore = require "objstore"

local client = objstore.new{
  endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT") or "http://127.0.0.1:7480",
  access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"),
  secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY"),
  region = "us-east-1",
}

local bucket = "quickstart-" .. os.time()
assert(client:create_bucket(bucket))
print("created bucket " .. bucket)

local put = assert(client:put_object(bucket, "notes/hello world.txt", "Hello from objstore!\n",
  { metadata = { author = "quickstart" } }))
print("uploaded notes/hello world.txt, ETag " .. put.etag)

for obj, err in client:list_objects_iter(bucket, { prefix = "notes/" }) do
  if not obj then error(tostring(err)) end
  print(string.format("listed %s (%d bytes)", obj.key, obj.size))
end

local got = assert(client:get_object(bucket, "notes/hello world.txt"))
io.write("downloaded: ", got.body)
print("metadata author = " .. got.metadata.author)

local url = assert(client:presign("GET", bucket, "notes/hello world.txt", { expires_in = 600 }))
print("presigned GET (10 min): " .. url)

-- Errors are values: nil plus a table that prints like a log line.
local _, err = client:get_object(bucket, "no/such/key")
print("a missing key gives: " .. tostring(err))

assert(client:delete_object(bucket, "notes/hello world.txt"))
assert(client:delete_bucket(bucket))
print("cleaned up")
