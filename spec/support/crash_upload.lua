-- Child process of the crash spec: uploads a file with a checkpoint and
-- appends "part <n>" to a log for every part the server acknowledged, so
-- the spec can count what was sent again after a kill -9.
--   lua crash_upload.lua <endpoint> <ak> <sk> <bucket> <key> <file> <log>
-- COPY_SOURCE=<key>: copy_large that object of the bucket to <key> instead,
-- <file> being the checkpoint path. CONCURRENCY=<n>: parts at once (4).
local objstore = require "objstore"
local unpack_args = table.unpack or unpack -- luacheck: ignore 143
local endpoint, ak, sk, bucket, key, file, log = unpack_args(arg)
local c = objstore.new{ endpoint = endpoint, access_key = ak, secret_key = sk }
local logf = assert(io.open(log, "a"))
logf:setvbuf("line")
-- Log every part request as it starts ("send"), wrapping this client's
-- transport: the spec counts how many parts went out more than once.
local transport = c.transport
local run = transport.run
transport.run = function(t, source, on_done, n)
  return run(t, function()
    local r = source()
    if r and r.method == "PUT" then logf:write("send\n") end
    return r
  end, on_done, n)
end
-- CRASH_AFTER=<op>: kill -9 this process as soon as a request of that
-- operation (CreateMultipartUpload, CompleteMultipartUpload) has its answer;
-- CRASH_AFTER=part:<k>: as soon as the k-th part has its answer, before
-- objstore can record it.
local crash_after = os.getenv("CRASH_AFTER")
local crash_part, answered = tonumber(crash_after and crash_after:match("^part:(%d+)$")), 0
local function is_op(r)
  if crash_part then
    if r.method == "PUT" then answered = answered + 1 end
    return answered == crash_part and r.method == "PUT"
  end
  if r.method ~= "POST" then return false end
  local url = r.url or ""
  if crash_after == "CreateMultipartUpload" then return url:find("[?&]uploads") ~= nil end
  return url:find("[?&]uploadId=") ~= nil
end
if crash_after then
  local run2 = transport.run
  transport.run = function(t, source, on_done, n)
    return run2(t, source, function(r, res, err)
      if res and is_op(r) then
        local f = assert(io.open("/proc/self/stat"))
        local pid = f:read("*n")
        f:close()
        logf:write("crash after ", crash_after, "\n")
        os.execute("kill -9 " .. pid)
      end
      return on_done(r, res, err)
    end, n)
  end
end
local copy_source = os.getenv("COPY_SOURCE")
local topts = { part_size = 5 * 1024 * 1024, concurrency = tonumber(os.getenv("CONCURRENCY")) or 4,
  checkpoint = true, on_part = function(n) logf:write("part ", n, "\n") end }
local res, err
if copy_source then
  topts.checkpoint, topts.multipart_threshold = file, 1
  res, err = c:copy_large(bucket, key, { bucket = bucket, key = copy_source }, topts)
else
  res, err = c:upload_file(bucket, key, file, topts)
end
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
logf:write("done ", tostring(res.etag), " ", res.resumed_from, " sent ", tostring(res.sent), "\n")
for _, n in ipairs(res.notices or {}) do logf:write("notice ", n, "\n") end
logf:close()
print(res.etag)
