-- objstore.sts and objstore.credentials.assume_role against rgw's own STS
-- (rgw_s3_auth_use_sts, rgw_sts_key; the role, the caps roles=* and the
-- user policy allowing GetSessionToken come from `rgw.sh sts-setup`, run
-- here too so an older cluster gets them). rgw 16.2 implements AssumeRole
-- and GetSessionToken (DurationSeconds at least 900) but not
-- GetCallerIdentity (405): that one is proved against botocore in
-- sts_shape_spec.lua.
local objstore = require "objstore"
local sts = require "objstore.sts"
local credentials = require "objstore.credentials"
local errors = require "objstore.errors"
local servers = require "spec.support.servers"

describe("STS on rgw #server", function()
  local rgw
  for _, s in ipairs(servers.list()) do
    if s.name == "rgw" then rgw = s end
  end
  local role_arn = os.getenv("OBJSTORE_TEST_STS_ROLE_ARN") or "arn:aws:iam:::role/objstore-sts-test"
  local bucket = servers.bucket_name("h9-sts")
  local dir = servers.tmpdir()

  local function base(extra)
    local o = { endpoint = rgw.sts_endpoint, region = rgw.region, access_key = rgw.access_key,
      secret_key = rgw.secret_key }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  setup(function()
    local ok, out = servers.sh("bash spec/support/rgw.sh sts-setup")
    assert(ok, "rgw.sh sts-setup failed: " .. out)
    assert(servers.client(rgw):create_bucket(bucket))
  end)

  teardown(function()
    servers.cleanup(servers.client(rgw), bucket)
    servers.sh("rm -rf " .. servers.q(dir))
  end)

  it("assume_role: temporary credentials that put, get and presign", function()
    local t0 = os.time()
    local c = assert(sts.assume_role(base{ role_arn = role_arn, session_name = "h9-spec", duration = 900 }))
    assert.is_string(c.access_key)
    assert.is_string(c.secret_key)
    assert.is_string(c.session_token)
    assert.are_not.equal(rgw.access_key, c.access_key)
    -- rgw states the expiration it enforces: duration seconds from now.
    assert.is_true(math.abs(c.expiration - (t0 + 900)) <= 5, "expiration " .. c.expiration)
    assert.are.equal("arn:aws:sts:::assumed-role/objstore-sts-test/h9-spec", c.arn)

    local tmp = objstore.new{ endpoint = rgw.sts_endpoint, region = rgw.region, access_key = c.access_key,
      secret_key = c.secret_key, session_token = c.session_token }
    assert(tmp:put_object(bucket, "temp/one", "with temporary credentials"))
    assert.are.equal("with temporary credentials", assert(tmp:get_object(bucket, "temp/one")).body)
    -- The token is what makes those keys valid.
    local notoken = objstore.new{ endpoint = rgw.sts_endpoint, region = rgw.region, access_key = c.access_key,
      secret_key = c.secret_key }
    local r, err = notoken:get_object(bucket, "temp/one")
    assert.is_nil(r)
    assert.are.equal(403, err.status)

    -- A browser-style upload: a presigned PUT with the temporary keys, sent by curl.
    local url = assert(tmp:presign("PUT", bucket, "temp/presigned", { expires_in = 600 }))
    assert.truthy(url:find("X-Amz-Security-Token=", 1, true))
    local file = dir .. "/presigned.txt"
    servers.write_file(file, "uploaded by curl -T\n")
    local ok, out = servers.sh("curl -sS -f -o /dev/null -w '%{http_code}' -T " .. servers.q(file) .. " "
      .. servers.q(url))
    assert(ok, out)
    assert.are.equal("200", out)
    assert.are.equal("uploaded by curl -T\n", assert(tmp:get_object(bucket, "temp/presigned")).body)
  end)

  it("get_session_token gives credentials rgw accepts", function()
    local c = assert(sts.get_session_token(base{ duration = 900 }))
    local tmp = objstore.new{ endpoint = rgw.sts_endpoint, region = rgw.region, access_key = c.access_key,
      secret_key = c.secret_key, session_token = c.session_token }
    assert(tmp:put_object(bucket, "temp/session", "x"))
    assert.are.equal("x", assert(tmp:get_object(bucket, "temp/session")).body)
  end)

  it("refusals are error values naming the action, never raising", function()
    local r, err = sts.assume_role(base{ role_arn = "arn:aws:iam:::role/h9-no-such-role", session_name = "x" })
    assert.is_nil(r)
    assert.truthy(errors.is(err))
    assert.are.equal("NoSuchEntity", err.code)
    assert.are.equal("AssumeRole", err.op)
    -- rgw's minimum duration is 900 seconds
    r, err = sts.assume_role(base{ role_arn = role_arn, session_name = "x", duration = 60 })
    assert.is_nil(r)
    assert.are.equal(400, err.status)
    -- a wrong secret: the signature of the STS request is checked
    r, err = sts.assume_role(base{ secret_key = "wrong", role_arn = role_arn, session_name = "x" })
    assert.is_nil(r)
    assert.are.equal(403, err.status)
    assert.is_nil(tostring(err):find("wrong", 1, true))
  end)

  it("misuse raises in the one format", function()
    assert.has_error(function() sts.assume_role(base{ session_name = "x" }) end,
      "objstore.sts.assume_role: argument #1 (opts.role_arn): is required")
    assert.has_error(function() sts.assume_role(base{ role_arn = role_arn, session_name = "x", duration = 1.5 }) end,
      "objstore.sts.assume_role: argument #1 (opts.duration): must be a whole number of seconds > 0")
    assert.has_error(function() sts.new{ provider = "gcs" } end,
      "objstore.sts.new: argument #1 (opts.provider): must be 's3' or 'oss'")
  end)

  describe("credentials.assume_role", function()
    local near_end
    local function provider(extra)
      local o = base{ role_arn = role_arn, session_name = "h9-refresh", duration = 900 }
      for k, v in pairs(extra or {}) do o[k] = v end
      return credentials.assume_role(o)
    end

    -- Makes the session a provider and its client hold look `left`
    -- seconds from its end, as a 900-second session does 900 - left
    -- seconds after it was issued: its renewal falls due `margin` (300 s)
    -- before its end (half its life is longer).
    function near_end(p, c, left)
      p.creds.expiration = os.time() + left
      p.creds.refresh_at = p.creds.expiration - p.margin
      c.creds.expiration = p.creds.expiration
    end

    it("fetches nothing before the first request, then once for many requests", function()
      local p = provider()
      assert.are.equal(0, p.refreshes)
      local c = objstore.new{ endpoint = rgw.sts_endpoint, region = rgw.region, credentials = p }
      assert.are.equal(0, p.refreshes)
      for i = 1, 5 do assert(c:put_object(bucket, "refresh/" .. i, "v" .. i)) end
      assert.are.equal("v3", assert(c:get_object(bucket, "refresh/3")).body)
      assert.are.equal(1, p.refreshes)
    end)

    it("renews in the middle of a multipart upload, once, with parts in flight", function()
      local p = provider()
      local c = objstore.new{ endpoint = rgw.sts_endpoint, region = rgw.region, credentials = p }
      local file = dir .. "/multi.bin"
      local chunk = string.rep("0123456789abcdef", 65536) -- 1 MiB
      local parts = {}
      for i = 1, 21 do parts[i] = chunk:sub(1, 1048575) .. string.char(64 + i) end
      servers.write_file(file, table.concat(parts))
      local keys_seen, jumped = {}, false
      local r = assert(c:upload_file(bucket, "refresh/multipart", file, { part_size = 5 * 1048576,
        concurrency = 2, on_part = function()
          keys_seen[#keys_seen + 1] = c.creds.access_key
          if not jumped then
            -- The session held now looks 200 s from its end (inside the
            -- 5-minute margin), as if it had been issued 700 s ago; rgw
            -- still takes its keys, and the new session's are real too.
            jumped = true
            near_end(p, c, 200)
          end
        end }))
      assert.are.equal(21 * 1048576, r.size)
      assert.are.equal(5, #keys_seen)
      assert.are.equal(2, p.refreshes, "one fetch at the start, one renewal")
      assert.are_not.equal(keys_seen[1], keys_seen[#keys_seen])
      local got = assert(servers.client(rgw):get_object(bucket, "refresh/multipart"))
      assert.are.equal(table.concat(parts), got.body)
    end)

    it("renews at once when the server says ExpiredToken (fault proxy in front of rgw)", function()
      -- A proxy of our own (port 18610), so no other run's fault settings
      -- meet ours; it answers one UploadPart with rgw's ExpiredToken error.
      local env = "FAULTPROXY_DIR=" .. servers.q(dir .. "/fp") .. " FAULTPROXY_PORT=18610 FAULTPROXY_UPSTREAM="
        .. servers.q(rgw.sts_endpoint) .. " "
      local ok, out = servers.sh(env .. "bash spec/support/faultproxy.sh start")
      assert(ok, out)
      finally(function() servers.sh(env .. "bash spec/support/faultproxy.sh stop") end)
      local cfg = dir .. "/faults.json"
      servers.write_file(cfg, '{"expired":{"rate":1,"methods":["PUT"],"match":"partNumber=2&","max":1}}')
      ok, out = servers.sh("curl -sS -f -X POST -H 'Content-Type: application/json' --data-binary @"
        .. servers.q(cfg) .. " http://127.0.0.1:18610/__faults")
      assert(ok, out)
      local p = provider()
      local retries = {}
      local c = objstore.new{ endpoint = "http://127.0.0.1:18610", region = rgw.region, credentials = p,
        retry = { base_delay = 0.001 }, hooks = { on_retry = function(e) retries[#retries + 1] = e.reason end } }
      local file = dir .. "/expired.bin"
      servers.write_file(file, string.rep("e", 3 * 5 * 1048576))
      assert(c:upload_file(bucket, "refresh/expired", file, { part_size = 5 * 1048576, concurrency = 2 }))
      assert.same({ "ExpiredToken" }, retries)
      assert.are.equal(2, p.refreshes, "the first session, then one renewal after the refusal")
    end)

    it("a failed renewal keeps the old credentials and reports the error", function()
      local reported = {}
      local p = provider{ on_error = function(e) reported[#reported + 1] = e end }
      local c = objstore.new{ endpoint = rgw.sts_endpoint, region = rgw.region, credentials = p }
      assert(c:put_object(bucket, "keep/1", "a"))
      assert.are.equal(1, p.refreshes)
      -- STS now refuses (the role is asked for a duration it does not
      -- allow) while the keys held are still valid for a few minutes.
      local held = p.creds.access_key
      p.fetch = function()
        return sts.assume_role(base{ role_arn = role_arn, session_name = "x", duration = 60 })
      end
      near_end(p, c, 200)
      assert(c:put_object(bucket, "keep/2", "b"))
      assert(c:put_object(bucket, "keep/3", "c"))
      assert.are.equal(held, c.creds.access_key)
      assert.are.equal(1, #reported, "reported once; not retried before retry_after")
      assert.are.equal(400, reported[1].status)
      assert.are.equal("AssumeRole", reported[1].op)
      assert.are.equal(1, p.failures)
      -- Once they have expired, requests fail with the renewal's error.
      near_end(p, c, -1)
      local r, err = c:put_object(bucket, "keep/4", "d")
      assert.is_nil(r)
      assert.are.equal(400, err.status)
      assert.are.equal(2, #reported)
    end)

    it("without on_error, a refused renewal goes to the client's on_error hook and log", function()
      local events, lines = {}, {}
      local p = provider()
      local c = objstore.new{ endpoint = rgw.sts_endpoint, region = rgw.region, credentials = p,
        hooks = { on_error = function(e) events[#events + 1] = e end },
        log = function(level, message) lines[#lines + 1] = level .. " " .. message end }
      assert(c:put_object(bucket, "hook/1", "a"))
      p.fetch = function()
        return sts.assume_role(base{ role_arn = role_arn, session_name = "x", duration = 60 })
      end
      near_end(p, c, 200)
      assert(c:put_object(bucket, "hook/2", "b"))
      assert.are.equal(1, #events)
      assert.are.equal("RefreshCredentials", events[1].op)
      assert.are.equal(400, events[1].error.status)
      local logged
      for _, l in ipairs(lines) do
        if l:find("^error objstore: AssumeRole") then logged = l end
      end
      assert.truthy(logged, table.concat(lines, "\n"))
    end)
  end)
end)
