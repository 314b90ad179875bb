-- Dry run of the state and checkpoint of a 10,000-part upload (no server):
-- every part planned, marked in flight, done with its digests and appended
-- to a real checkpoint file, as upload_file does. Prints the peak RSS at
-- 1, 1000, 5000 and 10,000 parts (flat: the state is one C block) and the
-- checkpoint bytes written per part (constant: one fixed-size record).
--   lua bench/mpu_state.lua <checkpoint path> [parts]
local core = require "objstore.core"

local path, parts = arg[1], tonumber(arg[2]) or 10000
local PART = 5 * 1024 * 1024

local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local kib
  for line in f:lines() do kib = kib or tonumber(line:match("^VmRSS:%s+(%d+)")) end
  f:close()
  return kib
end

os.remove(path)
local base = rss_kib()
local m = assert(core.mpu.new{ size = parts * PART, part_size = PART })
local ck = assert(core.mpu.checkpoint(path))
assert(ck:reset{ kind = "upload", bucket = "bench", key = "dry-run", upload_id = "dry", file_size = parts * PART,
  part_size = PART, object_size = parts * PART })
local header = ck:bytes_written()
local md5, crc = ("\7"):rep(16), ("\9"):rep(8)
local t0 = core.time.monotonic()
local marks = { [1] = true, [1000] = true, [5000] = true, [parts] = true }
local out = {}
for i = 1, parts do
  local n = m:next()
  m:digests(n, md5, crc)
  assert(m:done(n, '"07070707070707070707070707070707"'))
  assert(ck:append(m, n))
  if marks[i] then out[#out + 1] = ("%d:%d"):format(i, rss_kib() - base) end
end
local secs = core.time.monotonic() - t0
local _, _, _, state_bytes = m:info()
print(("parts %d  state %d KiB  RSS above baseline (KiB) at %s  checkpoint bytes/part %.1f  %.1f us/part (with fsync)")
  :format(parts, state_bytes // 1024, table.concat(out, " "), (ck:bytes_written() - header) / parts,
    secs / parts * 1e6))
ck:remove()
