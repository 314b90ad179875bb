-- The real S3 servers the integration specs run against, from the
-- environment that spec/support/run-tests.sh exports after starting them
-- (spec/support/rgw.sh env, spec/support/swift.sh env). A server that is
-- expected but not configured is an error, not a skip: set
-- OBJSTORE_NO_SERVERS=1 and exclude the "server" tag to run without them.
local objstore = require "objstore"

local _M = {}

local function getenv(n)
  local v = os.getenv(n)
  if v == "" then return nil end
  return v
end

--- { name, endpoint, sts_endpoint? (rgw), access_key, secret_key, region,
--   other_access_key?, other_secret_key?, skip = {feature=true} }
function _M.list()
  local out = {}
  if getenv("OBJSTORE_TEST_ENDPOINT") then
    -- sts_endpoint: the radosgw process with STS on (rgw.sh); temporary
    -- credentials are only accepted there
    out[#out + 1] = { name = "rgw", endpoint = getenv("OBJSTORE_TEST_ENDPOINT"),
      sts_endpoint = getenv("OBJSTORE_TEST_STS_ENDPOINT") or getenv("OBJSTORE_TEST_ENDPOINT"),
      access_key = getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = getenv("OBJSTORE_TEST_SECRET_KEY"),
      region = getenv("OBJSTORE_TEST_REGION") or "us-east-1",
      other_access_key = getenv("OBJSTORE_TEST_OTHER_ACCESS_KEY"),
      other_secret_key = getenv("OBJSTORE_TEST_OTHER_SECRET_KEY"), skip = {} }
  end
  if getenv("OBJSTORE_SWIFT_ENDPOINT") then
    -- What Swift's s3api does not implement (spec/support/servers.md).
    out[#out + 1] = { name = "swift", endpoint = getenv("OBJSTORE_SWIFT_ENDPOINT"),
      access_key = getenv("OBJSTORE_SWIFT_ACCESS_KEY"), secret_key = getenv("OBJSTORE_SWIFT_SECRET_KEY"),
      region = getenv("OBJSTORE_SWIFT_REGION") or "us-east-1",
      skip = { policy = true, conditional_put = true, part_number_get = true, acl_grants = true,
        other_user = true, copy_if_match = true, tagging = true } }
  end
  if #out == 0 and not getenv("OBJSTORE_NO_SERVERS") then
    error("no test server configured: run through `make test` (which starts them) or "
      .. "eval \"$(bash spec/support/rgw.sh env)\"; set OBJSTORE_NO_SERVERS=1 to run without")
  end
  return out
end

function _M.client(srv, extra)
  local o = { endpoint = srv.endpoint, access_key = srv.access_key, secret_key = srv.secret_key,
    region = srv.region }
  for k, v in pairs(extra or {}) do
    if v == false then o[k] = nil else o[k] = v end -- false removes a default
  end
  return objstore.new(o)
end

local counter = 0
--- A fresh bucket name per call (lowercase, unique per run).
function _M.bucket_name(prefix)
  counter = counter + 1
  local seed = tostring(os.time()):sub(-6) .. tostring(math.random(1000, 9999))
  return (prefix or "spec") .. "-" .. seed .. "-" .. counter
end

--- Deletes every object version, upload and the bucket itself.
function _M.cleanup(client, bucket)
  for _ = 1, 3 do
    local vs = client:list_object_versions(bucket)
    if vs then
      local keys = {}
      for _, v in ipairs(vs.versions) do keys[#keys + 1] = { key = v.key, version_id = v.version_id } end
      for _, v in ipairs(vs.delete_markers) do keys[#keys + 1] = { key = v.key, version_id = v.version_id } end
      if #keys > 0 then client:delete_objects(bucket, keys, { quiet = true }) end
    end
    local objs = {}
    for o in client:list_objects_iter(bucket) do
      if o and o.key then objs[#objs + 1] = o.key end
    end
    if #objs > 0 then client:delete_objects(bucket, objs, { quiet = true }) end
    local ups = client:list_multipart_uploads(bucket)
    if ups then
      for _, u in ipairs(ups.uploads) do client:abort_multipart_upload(bucket, u.key, u.upload_id) end
    end
    if client:delete_bucket(bucket) then return true end
  end
  return false
end

--- A fresh empty directory under /tmp.
function _M.tmpdir()
  local lfs = require "lfs"
  local d = os.tmpname()
  os.remove(d)
  assert(lfs.mkdir(d))
  return d
end

function _M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function _M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

--- Runs a shell command, returns (ok, output).
function _M.sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"__rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return rc == 0, (out:gsub("__rc=%d+%s*$", ""))
end

--- Starts spec/support/hostile_server.py (modes by the first path
-- segment or bucket) on `port` (0: one the kernel picks) for `lifetime`
-- seconds, its signing secret `secret`. Returns its base URL and a stop
-- function; raises when it does not come up within 10 s.
function _M.hostile_server(port, lifetime, secret)
  local out = os.tmpname()
  local ok, o = _M.sh("(/usr/bin/python3 spec/support/hostile_server.py " .. (port or 0) .. " "
    .. (lifetime or 300) .. " " .. _M.q(secret or "x") .. " >" .. _M.q(out) .. " 2>&1 & echo $!)")
  local pid = assert(ok and o:match("(%d+)"), o)
  local got
  for _ = 1, 100 do
    got = (_M.read_file(out) or ""):match("listening (%d+)")
    if got then break end
    _M.sh("sleep 0.1")
  end
  os.remove(out)
  if not got then
    _M.sh("kill " .. pid .. " 2>/dev/null")
    error("hostile_server.py did not start")
  end
  return "http://127.0.0.1:" .. got, function() _M.sh("kill " .. pid .. " 2>/dev/null") end
end

--- Makes sure the npm package `pkg` of package.json is installed under
-- node_modules/ (run from the repository root, as busted is), running
-- `npm ci` from the lockfile the first time one is missing; raises with
-- npm's output when that fails. The cross-check scripts (ali-oss, pop-core)
-- need it.
function _M.node_package(pkg)
  local ok, out = _M.sh("command -v node && node --version")
  assert(ok, "Node.js (node) must be on PATH for the SDK cross-checks: " .. out)
  local manifest = "node_modules/" .. pkg .. "/package.json"
  local f = io.open(manifest, "rb")
  if f then return f:close() end
  assert(_M.sh("command -v npm"), manifest .. " is missing and npm is not on PATH: run `npm ci`")
  local t = _M.sh("command -v timeout") and "timeout 300 " or ""
  local iok, iout = _M.sh(t .. "npm ci --no-audit --no-fund")
  assert(iok, "`npm ci --no-audit --no-fund` failed (" .. pkg .. " is needed):\n" .. iout:sub(-3000))
  f = assert(io.open(manifest, "rb"), "npm ci did not install " .. pkg)
  f:close()
end

--- Single-quotes a string for the shell.
function _M.q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

return _M
