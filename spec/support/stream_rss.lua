-- Child process of spec/stream_spec.lua: pipes `mib` MiB from `head -c`
-- through upload_stream and prints the process's memory, so that the
-- spec measures this process alone (not busted's).
-- Usage: lua stream_rss.lua endpoint access secret bucket key mib part_mib concurrency pipe|reader
local objstore = require "objstore"

local unpack = table.unpack or unpack
local endpoint, access, secret, bucket, key, mib, part_mib, concurrency, mode = unpack(arg)

local function status(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+) kB")) * 1024
end

local c = assert(objstore.new{ endpoint = endpoint, access_key = access, secret_key = secret,
  region = "us-east-1" })
assert(c:head_bucket(bucket))
collectgarbage()
local baseline = status("VmRSS")
local pipe = assert(io.popen("head -c " .. tonumber(mib) * 1024 * 1024 .. " /dev/urandom", "r"))
local reader = pipe
if mode == "reader" then
  reader = function() return pipe:read(64 * 1024) end
end
local peak = 0
local res, err = c:upload_stream(bucket, key, reader, { part_size = tonumber(part_mib) * 1024 * 1024,
  concurrency = tonumber(concurrency), progress = function()
    local rss = status("VmRSS")
    if rss > peak then peak = rss end
  end })
pipe:close()
if not res then
  io.write("error ", tostring(err), "\n")
  os.exit(1)
end
io.write(string.format("baseline %d hwm %d peak_rss %d size %d parts %d\n", baseline, status("VmHWM"), peak,
  res.size, res.parts))
