-- Child process of the download crash spec: downloads an object with a
-- checkpoint, logging "send" for every ranged GET it starts and "done ..."
-- at the end, so the spec can count what was fetched again after kill -9.
--   lua crash_download.lua <endpoint> <ak> <sk> <bucket> <key> <path> <log>
local objstore = require "objstore"
local unpack_args = table.unpack or unpack -- luacheck: ignore 143
local endpoint, ak, sk, bucket, key, path, log = unpack_args(arg)
local c = objstore.new{ endpoint = endpoint, access_key = ak, secret_key = sk }
local logf = assert(io.open(log, "a"))
logf:setvbuf("line")
local transport = c.transport
local run = transport.run
transport.run = function(t, source, on_done, n)
  return run(t, function()
    local r = source()
    if r and r.method == "GET" then logf:write("send\n") end
    return r
  end, on_done, n)
end
local res, err = c:download_file(bucket, key, path, { part_size = 5 * 1024 * 1024, concurrency = 4,
  checkpoint = true })
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
logf:write("done ", tostring(res.verified), " ", res.resumed_from, "\n")
logf:close()
