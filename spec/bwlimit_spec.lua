-- bwlimit is the rate of a whole transfer, not of each of its requests
-- (issue 19: "--bwlimit on every transfer"). A multipart upload or a
-- ranged download split it between the parts in flight; a bug made each
-- part take the whole rate (m:count() returned two values into
-- math.min), so four parts at once moved at four times the limit.
local servers = require "spec.support.servers"
local core = require "objstore.core"

local MiB = 1024 * 1024
local monotonic = core.time.monotonic

describe("bwlimit on multipart transfers #server", function()
  local srv = servers.list()[1]
  if not srv then
    it("needs a test server", function() pending("no server") end)
    return
  end
  local c, bucket, dir, path
  setup(function()
    c = servers.client(srv, { addressing = "path" })
    bucket = servers.bucket_name("bwlimit")
    assert(c:create_bucket(bucket))
    dir = servers.tmpdir()
    path = dir .. "/20m"
    local chunk = {}
    for i = 1, 1024 do chunk[i] = string.char(i % 251) end
    local block = table.concat(chunk):rep(1024) -- 1 MiB
    local f = assert(io.open(path, "wb"))
    for i = 1, 20 do f:write(string.char(i), block:sub(2)) end
    f:close()
  end)
  teardown(function()
    servers.cleanup(c, bucket)
    servers.sh("rm -rf " .. servers.q(dir))
  end)

  -- 20 MiB in 5 MiB parts, 4 at once, at 10 MiB/s: at least 2 s (the
  -- limit is an upper bound on the rate, so only the lower bound of the
  -- time is asserted; 1.6 s leaves room for a first burst). Each part at
  -- the whole rate would take ~0.5 s.
  local RATE, MIN_SECONDS = 10 * MiB, 1.6

  it("holds an upload's parts in flight together under the limit", function()
    local t0 = monotonic()
    local res = assert(c:upload_file(bucket, "up", path, { part_size = 5 * MiB, multipart_threshold = 5 * MiB,
      concurrency = 4, bwlimit = RATE }))
    local took = monotonic() - t0
    assert.equals(4, res.parts)
    assert.is_true(took >= MIN_SECONDS, ("20 MiB at 10 MiB/s took %.2f s"):format(took))
    assert.is_true(took < 60)
  end)

  it("holds a ranged download's parts in flight together under the limit", function()
    local t0 = monotonic()
    local res = assert(c:download_file(bucket, "up", dir .. "/back", { part_size = 5 * MiB, concurrency = 4,
      bwlimit = RATE }))
    local took = monotonic() - t0
    assert.is_true(res.verified)
    assert.equals(servers.read_file(path), servers.read_file(dir .. "/back"))
    assert.is_true(took >= MIN_SECONDS, ("20 MiB at 10 MiB/s took %.2f s"):format(took))
  end)
end)
