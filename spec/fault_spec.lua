-- Resilience: objstore against the real rgw through a fault-injecting proxy
-- (spec/support/faultproxy.sh: nginx + Lua on 127.0.0.1:7490; the spec
-- configures the faults at run time through spec/support/faults.lua).
--
-- The scenario of the issue, scaled to this machine: 200 objects of mixed
-- sizes (1 KiB .. 40 MiB, multipart included) uploaded and downloaded
-- through 10% SlowDown, 3% InternalError, 3% resets in the middle of a
-- response and 2% stalls longer than the client's timeout. Every object must
-- complete, every byte is checked by MD5 against the local file, and no
-- multipart upload may be left behind. The figures are printed as one line
-- ("fault scenario: ...").
--
-- Environment: OBJSTORE_FAULT_OBJECTS (default 200), OBJSTORE_FAULT_SEED
-- (object sizes; default fixed).
local servers = require "servers"
local faults = require "faults"
local core = require "objstore.core"
local lfs = require "lfs"

local KiB, MiB = 1024, 1024 * 1024

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(lfs.mkdir(d))
  return d
end

local function file_md5(path)
  local size = lfs.attributes(path, "size")
  if not size then return nil end
  return core.hash.tohex(core.hash.file("md5", path, 0, size))
end

--- A deterministic generator (the same on every Lua: math.random is not).
local function lcg(seed)
  local state = seed % 2147483647
  if state <= 0 then state = state + 2147483646 end
  return function(lo, hi)
    state = (state * 16807) % 2147483647
    return lo + state % (hi - lo + 1)
  end
end

--- Random bytes to slice the objects' contents from.
local function random_pool(dir, size)
  local path = dir .. "/pool"
  assert(servers.sh(string.format("head -c %d /dev/urandom > %s", size, servers.q(path))))
  local data = assert(servers.read_file(path))
  os.remove(path)
  assert(#data == size)
  return data
end

--- The object sizes: a few large (multipart), some medium, most small.
local function plan_sizes(n, rand)
  local sizes = { 40 * MiB, 29 * MiB + 12345, 18 * MiB + 1 }
  for _, s in ipairs{ 8 * MiB, 9 * MiB + 524288, 10 * MiB, 11 * MiB + 7, 12 * MiB, 6 * MiB, 7 * MiB + 3 } do
    sizes[#sizes + 1] = s
  end
  local medium = math.floor(n * 0.15)
  while #sizes < 10 + medium and #sizes < n do sizes[#sizes + 1] = rand(64 * KiB, 4 * MiB) end
  sizes[#sizes + 1] = 1 * KiB
  while #sizes < n do sizes[#sizes + 1] = rand(1 * KiB, 64 * KiB) end
  while #sizes > n do table.remove(sizes, 1) end
  return sizes
end

local function mib(n) return string.format("%.1f MiB", n / MiB) end

local function methods_line(m)
  local names, out = {}, {}
  for k in pairs(m or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do out[#out + 1] = k .. " " .. m[k] end
  return table.concat(out, ", ")
end

for _, srv in ipairs(servers.list()) do
  if srv.name == "rgw" then
    describe("fault injection through a proxy in front of rgw #server #slow", function()
      local fp, direct, bucket, dir
      local P = 5 * MiB
      local RETRY = { max_attempts = 10, base_delay = 0.05, max_delay = 1 }

      --- A client that goes through the proxy (it signs for the proxy's
      -- Host, which the proxy forwards unchanged).
      local function proxied(extra)
        local o = { endpoint = fp.endpoint, timeout = 2, connect_timeout = 2, retry = RETRY }
        for k, v in pairs(extra or {}) do o[k] = v end
        return servers.client(srv, o)
      end

      setup(function()
        fp = assert(faults.start(srv.endpoint))
        assert(fp:clear())
        direct = servers.client(srv)
        bucket = servers.bucket_name("fault")
        assert(direct:create_bucket(bucket))
        dir = tmpdir()
      end)

      teardown(function()
        if fp then fp:clear() end
        if direct and bucket then servers.cleanup(direct, bucket) end
        if dir then servers.sh("rm -rf " .. servers.q(dir)) end
        if fp then fp:stop() end
      end)

      before_each(function()
        assert(fp:clear())
        assert(fp:reset_stats())
      end)

      it("forwards requests and bodies unchanged when no fault is drawn", function()
        local c = proxied()
        local body = random_pool(dir, 3 * MiB + 17)
        local keys = { "plain", "dir/a b+c%25&=.txt", "empty" }
        for i, k in ipairs(keys) do
          local data = i == 3 and "" or body:sub(1, #body - i)
          assert(c:put_object(bucket, "fwd/" .. k, data))
          local h = assert(direct:head_object(bucket, "fwd/" .. k))
          assert.equals(#data, h.content_length)
          assert.equals('"' .. core.hash.tohex(core.hash.md5(data)) .. '"', h.etag)
          assert.equals(data, assert(c:get_object(bucket, "fwd/" .. k)).body)
        end
        local s = assert(fp:stats())
        assert.equals(0, s.faults_total)
        assert.equals(s.requests, s.forwarded)
        assert.equals(6, s.requests)
        assert.equals(c.retry.stats.attempts, s.requests)
      end)

      it("answers SlowDown and InternalError in the S3 shape, without forwarding the request", function()
        local c = proxied{ retry = { max_attempts = 1 } }
        for kind, want in pairs{ slowdown = { "SlowDown", 503 }, internal = { "InternalError", 500 } } do
          assert(fp:reset_stats())
          assert(fp:set{ [kind] = 1 })
          local _, err = c:put_object(bucket, "before/" .. kind, "never stored")
          assert.equals(want[1], err.code)
          assert.equals(want[2], err.status)
          assert.is_true(err.retryable)
          assert.matches("^faultproxy%-", err.request_id)
          local s = assert(fp:stats())
          assert.equals(1, s.faults[kind])
          assert.equals(0, s.forwarded)
          assert(fp:clear())
          local _, herr = direct:head_object(bucket, "before/" .. kind)
          assert.equals(404, herr.status) -- the server never saw the PUT
        end
      end)

      it("turns resets, stalls and cut bodies into retryable errors, then retries them", function()
        local data = random_pool(dir, 2 * MiB)
        assert(direct:put_object(bucket, "kinds/obj", data))
        local once = proxied{ retry = { max_attempts = 1 }, timeout = 1 }
        local want = { reset = { ConnectionReset = true }, stall = { Timeout = true },
          reset_mid = { BodyTruncated = true, ConnectionReset = true }, lost = { ConnectionReset = true } }
        for _, kind in ipairs{ "reset", "stall", "reset_mid", "lost" } do
          assert(fp:set{ [kind] = { rate = 1, methods = { "GET" } }, stall_seconds = 3 })
          local t0 = core.time.monotonic()
          local _, err = once:get_object(bucket, "kinds/obj")
          local took = core.time.monotonic() - t0
          assert.is_truthy(err, kind)
          assert.is_true(want[kind][err.code] == true, kind .. " gave " .. tostring(err))
          assert.is_true(err.retryable, kind)
          if kind == "stall" then assert.is_true(took >= 0.9 and took < 2.5, "stall took " .. took) end
          -- the same fault once: the retry gets the whole object
          assert(fp:reset_stats())
          assert(fp:set{ [kind] = { rate = 1, methods = { "GET" }, max = 1 }, stall_seconds = 3 })
          local c = proxied{ timeout = 1 }
          local r = assert(c:get_object(bucket, "kinds/obj"))
          assert.equals(#data, #r.body)
          assert.is_true(r.body == data, kind .. ": body differs")
          assert.equals(1, c.retry.stats.retries)
          assert.equals(1, assert(fp:stats()).faults[kind])
        end
      end)

      it("uploads and downloads 200 objects through SlowDown, 500s, resets and stalls: nothing is lost", function()
        local n = tonumber(os.getenv("OBJSTORE_FAULT_OBJECTS") or "") or 200
        local seed = tonumber(os.getenv("OBJSTORE_FAULT_SEED") or "") or 20240601
        local rand = lcg(seed)
        local sizes = plan_sizes(n, rand)
        local largest = 0
        for _, s in ipairs(sizes) do if s > largest then largest = s end end
        local pool = random_pool(dir, largest + MiB)
        local objs, total = {}, 0
        for i, size in ipairs(sizes) do
          local off = rand(0, #pool - size)
          local path = dir .. "/src-" .. i
          servers.write_file(path, pool:sub(off + 1, off + size))
          objs[i] = { key = string.format("obj/%03d-%d", i, size), path = path, size = size, md5 = file_md5(path) }
          total = total + size
        end
        pool = nil -- luacheck: ignore

        local c = proxied()
        assert(fp:set{ slowdown = 0.10, internal = 0.03, stall = 0.02,
          reset_mid = { rate = 0.03, methods = { "GET", "PUT", "POST" } }, stall_seconds = 3 })
        local t0 = core.time.monotonic()
        local failed, multipart = {}, 0
        for _, o in ipairs(objs) do
          local r, err = c:upload_file(bucket, o.key, o.path, { part_size = P, multipart_threshold = 8 * MiB,
            concurrency = 4 })
          if r then
            if r.parts > 1 then multipart = multipart + 1 end
          else
            failed[#failed + 1] = "upload " .. o.key .. ": " .. tostring(err)
          end
        end
        local t_up = core.time.monotonic() - t0
        local verified, lost_bytes = 0, 0
        for i, o in ipairs(objs) do
          local out = dir .. "/back-" .. i
          local r, err = c:download_file(bucket, o.key, out, { part_size = P, concurrency = 4 })
          if r and file_md5(out) == o.md5 and lfs.attributes(out, "size") == o.size then
            verified = verified + 1
          else
            lost_bytes = lost_bytes + o.size
            failed[#failed + 1] = "download " .. o.key .. ": " .. (r and ("MD5 " .. tostring(file_md5(out))
              .. " is not " .. o.md5) or tostring(err))
          end
          os.remove(out)
        end
        local elapsed = core.time.monotonic() - t0
        local s = assert(fp:stats())
        assert(fp:clear())

        -- What the server holds, asked directly (no faults on this path).
        local leftover = assert(direct:list_incomplete_uploads(bucket, "obj/"))
        local listed = {}
        for o in direct:list_objects_iter(bucket, { prefix = "obj/" }) do
          if o and o.key then listed[o.key] = tonumber(o.size) end
        end
        for _, o in ipairs(objs) do
          if listed[o.key] ~= o.size then failed[#failed + 1] = "listing: " .. o.key .. " has size "
            .. tostring(listed[o.key]) end
        end

        local st = c.retry.stats
        local line = string.format("fault scenario (rgw via faultproxy): %d objects (%d multipart), %s up and down "
          .. "in %.1f s (upload %.1f s); %s [methods: %s; statuses sent: %s]; client attempts %d, retries %d "
          .. "(throttled %d, quota exhausted %d); objects verified by MD5 %d/%d; bytes lost %d; incomplete uploads "
          .. "left %d", #objs, multipart, mib(total), elapsed, t_up, faults.describe(s), methods_line(s.methods),
          methods_line(s.statuses), st.attempts, st.retries, st.throttled, st.quota_exhausted, verified, #objs,
          lost_bytes, #leftover)
        print("\n" .. line)
        for i = 1, math.min(#failed, 10) do print("  " .. failed[i]) end

        assert.same({}, failed)
        assert.equals(#objs, verified)
        assert.equals(0, lost_bytes)
        assert.equals(0, #leftover)
        -- The faults really happened, and each one cost the client a retry.
        for _, kind in ipairs{ "slowdown", "internal", "stall", "reset_mid" } do
          assert.is_true(s.faults[kind] > 0, "no " .. kind .. " fault was injected")
        end
        assert.is_true(st.retries >= s.faults_total, "retries " .. st.retries .. " < faults " .. s.faults_total)
        assert.is_true(s.requests >= st.attempts)
        assert.equals(0, st.quota_exhausted)
      end)

      -- After-forwarding faults on the POSTs of a multipart upload: the
      -- server has acted, the client never heard. These are the cases the
      -- scenario above keeps its mid-body resets away from (GET/PUT only).
      local mp_path, mp_md5
      local function mp_file()
        if not mp_path then
          mp_path = dir .. "/mp-src"
          servers.write_file(mp_path, random_pool(dir, 2 * P + 4321))
          mp_md5 = file_md5(mp_path)
        end
        return mp_path, mp_md5
      end

      for _, kind in ipairs{ "lost", "reset_mid" } do
        it("completes an upload whose CompleteMultipartUpload answer is " .. (kind == "lost" and "lost" or
          "cut mid-body") .. " (the retried Complete)", function()
          local path, md5 = mp_file()
          local key = "complete-" .. kind
          assert(fp:set{ [kind] = { rate = 1, methods = { "POST" }, match = "uploadId=", max = 1 } })
          local c = proxied()
          local r, err = c:upload_file(bucket, key, path, { part_size = P, multipart_threshold = P })
          local s = assert(fp:stats())
          assert.equals(1, s.faults[kind])
          assert.is_nil(err and tostring(err))
          assert.equals(3, r.parts)
          local out = dir .. "/" .. key .. ".back"
          assert(direct:download_file(bucket, key, out))
          assert.equals(md5, file_md5(out))
          assert.same({}, assert(direct:list_incomplete_uploads(bucket, key)))
        end)
      end

      it("leaves no upload behind when the CreateMultipartUpload answer is lost", function()
        local path, md5 = mp_file()
        local key = "create-lost"
        assert(fp:set{ lost = { rate = 1, methods = { "POST" }, match = "%?uploads$", max = 1 } })
        local c = proxied()
        local r, err = c:upload_file(bucket, key, path, { part_size = P, multipart_threshold = P })
        assert.equals(1, assert(fp:stats()).faults.lost)
        assert.is_nil(err and tostring(err))
        assert.equals(3, r.parts)
        local out = dir .. "/" .. key .. ".back"
        assert(direct:download_file(bucket, key, out))
        assert.equals(md5, file_md5(out))
        local left = assert(direct:list_incomplete_uploads(bucket, key))
        assert.equals(0, #left, "the upload created by the lost request is left behind: " .. (left[1]
          and left[1].upload_id or ""))
      end)

      it("retries a range whose body is silently short (no Content-Length) and never keeps a bad file", function()
        local path, md5 = mp_file()
        local key = "short-range"
        assert(direct:upload_file(bucket, key, path, { part_size = P, multipart_threshold = P }))
        assert(fp:set{ truncate = { rate = 1, methods = { "GET" }, max = 1 } })
        local c = proxied()
        local out = dir .. "/" .. key .. ".back"
        local r, err = c:download_file(bucket, key, out, { part_size = P, concurrency = 1 })
        assert.equals(1, assert(fp:stats()).faults.truncate)
        -- never a short or mixed file under the final name
        if lfs.attributes(out) then assert.equals(md5, file_md5(out)) end
        assert.is_nil(err and tostring(err))
        assert.equals(md5, file_md5(out))
        assert.equals(2 * P + 4321, r.size)
      end)

      it("completes a run through the second endpoint when the first is killed mid-run", function()
        local c = proxied{ endpoint = false, endpoints = { fp.endpoint, srv.endpoint },
          failover = { threshold = 2, cooldown = 60 } }
        for i = 1, 40 do
          if i == 15 then assert.is_true((servers.sh("bash spec/support/faultproxy.sh stop"))) end
          local body = ("object %d "):format(i):rep(200)
          assert(c:put_object(bucket, "failover/" .. i, body))
          assert.equals(body, assert(c:get_object(bucket, "failover/" .. i)).body)
        end
        local first, second = c.endpoints.members[1], c.endpoints.members[2]
        assert.equals("open", first.state)
        assert.is_true(first.errors >= 2)
        assert.equals(0, second.errors)
        -- bring the proxy back for whoever runs next
        assert.is_true((servers.sh("FAULTPROXY_UPSTREAM=" .. servers.q(srv.endpoint)
          .. " bash spec/support/faultproxy.sh start")))
      end)
    end)
  end
end
