-- The S3 front server (objstore.front.server, examples/front) in front of
-- radosgw, driven by real clients: awscli, Debian's boto3 (through
-- spec/support/front_clients.py), curl with a presigned URL. Two tenants A
-- and B share ONE store bucket under different prefixes; A has a second
-- bucket elsewhere, read and list only. Every write is checked on the store
-- itself (objstore's client with the store's keys).
-- Tagged #server: it needs radosgw (eval "$(bash spec/support/rgw.sh env)").
-- nginx listens on OBJSTORE_SPEC_FRONT_PORT (18780), its files under
-- OBJSTORE_SPEC_FRONT_DIR (/tmp/objstore-front-spec).
local objstore = require "objstore"
local servers = require "servers"
local futil = require "front_util"
local cjson = require "cjson"
local core = require "objstore.core"

local PORT = os.getenv("OBJSTORE_SPEC_FRONT_PORT") or "18780"
local DIR = os.getenv("OBJSTORE_SPEC_FRONT_DIR") or "/tmp/objstore-front-spec"
local URL = "http://127.0.0.1:" .. PORT
local AWS = "/usr/bin/aws"
local PY = "/usr/bin/python3"

local sh, q, random_hex, code_of = futil.sh, futil.q, futil.random_hex, futil.code_of
local write_file, read_file = servers.write_file, servers.read_file

describe("the S3 front server #server #nginx", function()
  local store, shared, other, A, B, tmp

  local function client_env(t)
    return ("env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_CONFIG_FILE=%s "
      .. "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s "
      .. "AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true FRONT_URL=%s "):format(
      q(tmp .. "/aws.cfg"), q(t.ak), q(t.sk), q(URL))
  end

  -- awscli as tenant t; returns ok, output.
  local function aws(t, args)
    return sh(client_env(t) .. "timeout 120 " .. AWS .. " --endpoint-url " .. URL .. " " .. args)
  end

  -- spec/support/front_clients.py as tenant t; returns the decoded JSON.
  local function py(t, args)
    local ok, out = sh(client_env(t) .. "timeout 120 " .. PY .. " spec/support/front_clients.py " .. args)
    local doc = ok and cjson.decode(out:match("[^\n]*\n?$") or "") or nil
    assert(type(doc) == "table", "front_clients.py " .. args .. " failed:\n" .. out)
    return doc
  end

  local function on_store(key)
    local res, err = store:get_object(shared, key)
    if res then return res.body end
    assert.equal(404, err.status, tostring(err))
    return nil
  end

  setup(function()
    assert(os.getenv("OBJSTORE_TEST_ENDPOINT"), "no rgw configured: eval \"$(bash spec/support/rgw.sh env)\"")
    local ok, out = sh("make --no-print-directory -s build LUA=luajit")
    assert(ok, "make build LUA=luajit failed: " .. out)
    tmp = DIR .. "-files"
    assert(sh("rm -rf " .. q(tmp) .. " && mkdir -p " .. q(tmp)))
    store = objstore.new{ endpoint = os.getenv("OBJSTORE_TEST_ENDPOINT"), region = "us-east-1", addressing = "path",
      access_key = os.getenv("OBJSTORE_TEST_ACCESS_KEY"), secret_key = os.getenv("OBJSTORE_TEST_SECRET_KEY"),
      timeout = 60 }
    local id = random_hex(6)
    shared, other = "front-spec-" .. id, "front-spec-" .. id .. "-other"
    assert(store:create_bucket(shared))
    assert(store:create_bucket(other))
    A = { ak = "AKFRONTA" .. id, sk = random_hex(16) }
    B = { ak = "AKFRONTB" .. id, sk = random_hex(16) }
    local tenants = { tenants = {
      a = { keys = { { access_key = A.ak, secret_key = A.sk } }, buckets = {
        data = { store_bucket = shared, prefix = "tenant-a/", allow = { "read", "write", "list", "delete" } },
        extra = { store_bucket = other, prefix = "x/", allow = { "read", "list" } } } },
      b = { keys = { { access_key = B.ak, secret_key = B.sk } }, buckets = {
        data = { store_bucket = shared, prefix = "tenant-b/", allow = { "read", "write", "list", "delete" } } } },
    } }
    write_file(tmp .. "/tenants.json", cjson.encode(tenants))
    A.tenants = tenants
    write_file(tmp .. "/aws.cfg", "[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 1GB\n"
      .. "  addressing_style = path\n")
    ok, out = sh(("FRONT_DOMAIN=front.test FRONT_PORT=%s FRONT_DIR=%s FRONT_TENANTS=%s timeout 120 "
      .. "bash examples/front/run.sh start")
      :format(q(PORT), q(DIR), q(tmp .. "/tenants.json")))
    assert(ok, "cannot start the front: " .. out)
  end)

  teardown(function()
    sh(("FRONT_PORT=%s FRONT_DIR=%s timeout 60 bash examples/front/run.sh stop"):format(q(PORT), q(DIR)))
    if store then
      for _, b in ipairs({ shared, other }) do
        if b then
          local keys = {}
          for o in store:list_objects_iter(b) do
            if o then keys[#keys + 1] = o.key end
          end
          if #keys > 0 then store:delete_objects(b, keys) end
          store:delete_bucket(b)
        end
      end
    end
    if tmp then sh("rm -rf " .. q(tmp)) end
  end)

  it("round-trips a small and a 20 MiB file with awscli, byte-identical on the store under the prefix", function()
    local small, big = tmp .. "/small.txt", tmp .. "/big.bin"
    write_file(small, "hello from tenant A\n")
    assert(sh("head -c 20971520 /dev/urandom > " .. q(big)))
    local ok, out = aws(A, "s3 cp " .. q(small) .. " s3://data/docs/small.txt")
    assert(ok, out)
    ok, out = aws(A, "s3 cp " .. q(big) .. " s3://data/big/big.bin")
    assert(ok, out)
    assert.equal(read_file(small), on_store("tenant-a/docs/small.txt"))
    local stored = on_store("tenant-a/big/big.bin")
    assert.is_true(stored == read_file(big), "the 20 MiB object differs on the store")
    ok, out = aws(A, "s3 cp s3://data/big/big.bin " .. q(tmp .. "/big.back"))
    assert(ok, out)
    assert.is_true(read_file(tmp .. "/big.back") == read_file(big), "the 20 MiB download differs")
    ok, out = aws(A, "s3 ls s3://data/docs/")
    assert(ok, out)
    assert.truthy(out:find("small.txt", 1, true), out)
    assert.falsy(out:find("tenant-a", 1, true), out)
    ok, out = aws(A, "s3 ls")
    assert(ok, out)
    assert.truthy(out:find(" data\n", 1, true) and out:find(" extra\n", 1, true), out)
    assert.falsy(out:find(shared, 1, true), out)
    -- a range
    ok, out = aws(A, "s3api get-object --bucket data --key big/big.bin --range bytes=1000-1999 " .. q(tmp .. "/range"))
    assert(ok, out)
    assert.is_true(read_file(tmp .. "/range") == read_file(big):sub(1001, 2000), "the range differs")
    -- delete
    ok, out = aws(A, "s3api delete-object --bucket data --key big/big.bin")
    assert(ok, out)
    assert.is_nil(on_store("tenant-a/big/big.bin"))
  end)

  it("serves boto3: put_object, get_object, list_objects_v2 with a delimiter and MaxKeys=2 pages", function()
    local f = tmp .. "/boto.bin"
    write_file(f, random_hex(3000))
    local r = py(A, "put " .. q(f) .. " data boto/one.bin")
    assert.equal(200, r.status)
    assert.equal(read_file(f), on_store("tenant-a/boto/one.bin"))
    assert.equal('"' .. core.hash.tohex(core.hash.md5(read_file(f))) .. '"', r.etag)
    r = py(A, "get data boto/one.bin " .. q(tmp .. "/boto.back"))
    assert.equal(200, r.status)
    assert.equal(read_file(f), read_file(tmp .. "/boto.back"))
    for _, k in ipairs({ "boto/list/a1", "boto/list/a2", "boto/list/d1/x", "boto/list/d2/y", "boto/list/z <&>" }) do
      assert(store:put_object(shared, "tenant-a/" .. k, k))
    end
    assert(store:put_object(shared, "tenant-b/boto/list/b-only", "b"))
    r = py(A, "list data boto/list/ / 2")
    local keys, prefixes = {}, {}
    for i, p in ipairs(r.pages) do
      assert.is_true(p.key_count <= 2)
      assert.equal(i < #r.pages, p.truncated)
      if type(p.token) == "string" then
        -- the store prefix is in neither the token nor what it encodes
        assert.falsy(p.token:find("tenant", 1, true))
        local raw = core.encode.base64_decode((p.token:gsub("-", "+"):gsub("_", "/")))
        assert.is_string(raw, p.token)
        assert.falsy(raw:find("tenant-a", 1, true), "the token carries the store prefix")
      end
      for _, k in ipairs(p.keys) do keys[#keys + 1] = k end
      for _, k in ipairs(p.prefixes) do prefixes[#prefixes + 1] = k end
    end
    assert.equal(3, #r.pages)
    assert.same({ "boto/list/a1", "boto/list/a2", "boto/list/z <&>" }, keys)
    assert.same({ "boto/list/d1/", "boto/list/d2/" }, prefixes)
    -- ListObjects v1 (awscli's list-objects pages with Marker/NextMarker)
    local ok, out = aws(A, "s3api list-objects --bucket data --prefix boto/list/ --delimiter / --page-size 2 "
      .. "--output json")
    assert(ok, out)
    local v1 = cjson.decode(out)
    local v1keys, v1prefixes = {}, {}
    for _, o in ipairs(v1.Contents or {}) do v1keys[#v1keys + 1] = o.Key end
    for _, p in ipairs(v1.CommonPrefixes or {}) do v1prefixes[#v1prefixes + 1] = p.Prefix end
    assert.same(keys, v1keys)
    assert.same(prefixes, v1prefixes)
    -- tenant B, same tenant bucket name, same store bucket: only its own
    r = py(B, "list data boto/ '' 1000")
    assert.same({ "boto/list/b-only" }, r.pages[1].keys)
  end)

  it("answers a presigned GET URL made by boto3 (curl)", function()
    assert(store:put_object(shared, "tenant-a/pre/signed.txt", "presigned bytes"))
    local r = py(A, "presign data pre/signed.txt")
    local ok, out = sh("timeout 30 curl -sS --max-time 20 -o " .. q(tmp .. "/pre.out") .. " -w '%{http_code}' "
      .. q(r.url))
    assert(ok, out)
    assert.equal("200", out)
    assert.equal("presigned bytes", read_file(tmp .. "/pre.out"))
    -- the same URL with one signature character changed
    local bad = r.url:gsub("(X%-Amz%-Signature=%x)(%x)", function(a, c) return a .. (c == "0" and "1" or "0") end)
    ok, out = sh("timeout 30 curl -sS --max-time 20 -w '\n%{http_code}' " .. q(bad))
    assert(ok, out)
    assert.equal("403", out:match("(%d+)$"))
    assert.equal("SignatureDoesNotMatch", code_of(out))
  end)

  it("stores an aws-chunked upload of @aws-sdk/client-s3 v3 decoded (CRC32 trailer checked)", function()
    servers.node_package("@aws-sdk/client-s3")
    local f = tmp .. "/sdk.bin"
    write_file(f, random_hex(150000))
    local ok, out = sh(client_env(A) .. "timeout 120 node spec/support/sdkv3_through_front.js data sdk/chunked.bin "
      .. q(f) .. " 2>/dev/null")
    local r = cjson.decode(out:match("[^\n]*\n?$") or "")
    assert(ok, out)
    assert.is_true(r.get_equal)
    assert.same({ "sdk/chunked.bin" }, r.listed)
    assert.is_true(on_store("tenant-a/sdk/chunked.bin") == read_file(f), "the store holds other bytes")
  end)

  it("refuses an aws-chunked body whose trailer checksum is wrong; nothing is stored", function()
    local data = random_hex(40000)
    local body = ("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"):format(#data, data)
    write_file(tmp .. "/chunked.body", body)
    local r = py(A, "raw PUT /data/chunked-bad.bin --body " .. q(tmp .. "/chunked.body")
      .. " --sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER --header Content-Encoding:aws-chunked"
      .. " --header x-amz-trailer:x-amz-checksum-crc32 --header x-amz-decoded-content-length:" .. #data)
    assert.equal(400, r.status, r.body)
    assert.equal("BadDigest", code_of(r.body))
    assert.is_nil(on_store("tenant-a/chunked-bad.bin"))
  end)

  it("answers virtual-host addressing (bucket.<FRONT_DOMAIN>, curl --aws-sigv4)", function()
    assert(store:put_object(shared, "tenant-a/vhost/k.txt", "virtual host"))
    local base = ("curl -sS --max-time 20 --resolve data.front.test:%s:127.0.0.1 --aws-sigv4 aws:amz:us-east-1:s3 "
      .. "-H 'x-amz-content-sha256: %s' --user %s "):format(PORT, core.hash.tohex(core.hash.sha256("")),
      q(A.ak .. ":" .. A.sk))
    local ok, out = sh("timeout 30 " .. base .. q("http://data.front.test:" .. PORT .. "/vhost/k.txt"))
    assert(ok, out)
    assert.equal("virtual host", out)
    ok, out = sh("timeout 30 " .. base .. q("http://data.front.test:" .. PORT .. "/?list-type=2&prefix=vhost%2F"))
    assert(ok, out)
    assert.truthy(out:find("<Key>vhost/k.txt</Key>", 1, true), out)
    assert.falsy(out:find("tenant-a", 1, true), out)
  end)

  describe("isolation", function()
    local secret = "B's secret object"
    before_each(function()
      assert(store:put_object(shared, "tenant-b/private/secret.txt", secret))
    end)

    local function raw(t, method, path, extra)
      return py(t, "raw " .. method .. " " .. q(path) .. " " .. (extra or ""))
    end

    local function refused(r, status, code)
      if status then assert.equal(status, r.status, r.body) else assert.is_true(r.status >= 400, r.body) end
      assert.falsy(r.body:find(secret, 1, true), "B's bytes leaked: " .. r.body)
      -- Resource echoes the request's own path: left out
      local answer = r.body:gsub("<Resource>.-</Resource>", "")
      assert.falsy(answer:find(shared, 1, true), "the store bucket leaked: " .. r.body)
      -- A's requests name B's prefix as an attempt, never A's own
      assert.falsy(answer:find("tenant-a", 1, true), "a store prefix leaked: " .. r.body)
      if code then assert.equal(code, code_of(r.body), r.body) end
    end

    it("B reads its own object, A cannot by bucket name, '..' or percent-encoding", function()
      local r = raw(B, "GET", "/data/private/secret.txt")
      assert.equal(200, r.status)
      assert.equal(secret, r.body)
      assert.truthy(r.request_id and #r.request_id > 0)
      refused(raw(A, "GET", "/data/private/secret.txt"), 404, "NoSuchKey")
      refused(raw(A, "GET", "/" .. shared .. "/tenant-b/private/secret.txt"), 404, "NoSuchBucket")
      refused(raw(A, "GET", "/data/x/../../tenant-b/private/secret.txt"), 400, "InvalidArgument")
      refused(raw(A, "GET", "/data/x%2F..%2F..%2Ftenant-b%2Fprivate%2Fsecret.txt"), 400, "InvalidArgument")
      refused(raw(A, "GET", "/data/%2E%2E/tenant-b/private/secret.txt"), nil)
      -- nginx itself refuses a path above the root
      local r2 = raw(A, "GET", "/data/../../tenant-b/private/secret.txt")
      assert.equal(400, r2.status)
      assert.falsy(r2.body:find(secret, 1, true))
    end)

    it("A cannot list, overwrite or delete B's objects", function()
      local r = raw(A, "GET", "/data?list-type=2&prefix=..%2Ftenant-b%2F")
      refused(r, 200)
      assert.falsy(r.body:find("secret", 1, true), r.body)
      r = raw(A, "GET", "/data?list-type=2&prefix=")
      refused(r, 200)
      assert.falsy(r.body:find("private", 1, true), r.body)
      r = raw(A, "GET", "/data?prefix=..%2F")
      refused(r, 200)
      assert.falsy(r.body:find("<Contents>", 1, true), r.body)
      write_file(tmp .. "/evil", "overwritten by A")
      refused(raw(A, "PUT", "/data/x/../../tenant-b/private/secret.txt", "--body " .. q(tmp .. "/evil")), 400,
        "InvalidArgument")
      refused(raw(A, "DELETE", "/data/x%2F..%2F..%2Ftenant-b%2Fprivate%2Fsecret.txt"), 400, "InvalidArgument")
      refused(raw(A, "DELETE", "/" .. shared .. "/tenant-b/private/secret.txt"), 404, "NoSuchBucket")
      -- A's delete of the same key name deletes A's key only
      r = raw(A, "DELETE", "/data/private/secret.txt")
      assert.equal(204, r.status)
      assert.equal(secret, on_store("tenant-b/private/secret.txt"))
    end)

    it("refuses an unknown key, a tampered signature, an operation outside allow", function()
      refused(raw({ ak = "AKNOBODY", sk = "whatever-secret" }, "GET", "/data/private/secret.txt"), 403,
        "InvalidAccessKeyId")
      refused(raw(A, "GET", "/data/private/secret.txt", "--tamper"), 403, "SignatureDoesNotMatch")
      write_file(tmp .. "/w", "write to a read-only mapping")
      refused(raw(A, "PUT", "/extra/w.txt", "--body " .. q(tmp .. "/w")), 403, "AccessDenied")
      refused(raw(A, "DELETE", "/extra/w.txt"), 403, "AccessDenied")
      local res = assert(store:list_objects(other, {}))
      assert.equal(0, #res.contents)
    end)

    it("refuses a PUT whose payload does not match x-amz-content-sha256; nothing is stored", function()
      local f = tmp .. "/mismatch"
      write_file(f, random_hex(200000))
      local r = raw(A, "PUT", "/data/mismatch.bin", "--body " .. q(f) .. " --sha256 " .. ("ab"):rep(32))
      refused(r, 400, "XAmzContentSHA256Mismatch")
      assert.is_nil(on_store("tenant-a/mismatch.bin"))
      -- the same body with its true hash is stored
      r = raw(A, "PUT", "/data/mismatch.bin", "--body " .. q(f))
      assert.equal(200, r.status, r.body)
      assert.equal(read_file(f), on_store("tenant-a/mismatch.bin"))
    end)

    it("answers 501 NotImplemented for multipart, copy, bucket creation (boto3)", function()
      local r = py(A, "call create_multipart_upload " .. q('{"Bucket":"data","Key":"m"}'))
      assert.same({ status = 501, code = "NotImplemented" }, r)
      r = py(A, "call copy_object " .. q('{"Bucket":"data","Key":"c","CopySource":"data/private/secret.txt"}'))
      assert.same({ status = 501, code = "NotImplemented" }, r)
      r = py(A, "call create_bucket " .. q('{"Bucket":"newbucket"}'))
      assert.same({ status = 501, code = "NotImplemented" }, r)
      r = py(A, "call put_object_acl " .. q('{"Bucket":"data","Key":"k","ACL":"public-read"}'))
      assert.same({ status = 501, code = "NotImplemented" }, r)
      -- headers it does not understand are refused, not dropped
      r = py(A, "call put_object " .. q('{"Bucket":"data","Key":"t","Body":"x","Tagging":"a=b"}'))
      assert.same({ status = 501, code = "NotImplemented" }, r)
      r = py(A, "call put_object " .. q('{"Bucket":"data","Key":"t","Body":"x","ServerSideEncryption":"AES256"}'))
      assert.same({ status = 501, code = "NotImplemented" }, r)
      assert.is_nil(on_store("tenant-a/t"))
      -- more than 100 request headers: refused before anything else
      local hs = {}
      for i = 1, 101 do hs[#hs + 1] = "-H " .. q("x-filler-" .. i .. ": 1") end
      local ok, out = sh("timeout 30 curl -sS --max-time 20 -w '\n%{http_code}' " .. table.concat(hs, " ") .. " "
        .. q(URL .. "/data/k"))
      assert(ok, out)
      assert.equal("400", out:match("(%d+)$"))
      assert.equal("RequestHeaderSectionTooLarge", code_of(out))
      assert.is_nil(on_store("tenant-a/m"))
      assert.is_nil(on_store("tenant-a/c"))
    end)
  end)

  it("rotates a key: a second key added works, the old one removed is refused (the file reloaded)", function()
    local path = tmp .. "/tenants.json"
    local function replace(doc)
      write_file(path .. ".new", cjson.encode(doc))
      assert(os.rename(path .. ".new", path))
    end
    local function status(t)
      local r = py(t, "raw GET " .. q("/data/?list-type=2&max-keys=1"))
      return r.status, code_of(r.body)
    end
    -- every worker reads the file again on its first request a second
    -- after its last check: wait for one answer, then 1.2 s, then all
    local function settle(t, want_status)
      local deadline = os.time() + 20
      while status(t) ~= want_status do
        assert.is_true(os.time() < deadline, "the tenants file was not reloaded within 20 s")
        sh("sleep 0.2")
      end
      sh("sleep 1.2")
      for _ = 1, 4 do assert.equal(want_status, (status(t))) end
    end
    local A2 = { ak = A.ak .. "N", sk = random_hex(16) }
    local doc = A.tenants
    doc.tenants.a.keys[2] = { access_key = A2.ak, secret_key = A2.sk }
    replace(doc)
    settle(A2, 200)
    assert.equal(200, (status(A)))
    table.remove(doc.tenants.a.keys, 1)
    replace(doc)
    settle(A, 403)
    local _, code = status(A)
    assert.equal("InvalidAccessKeyId", code)
    assert.equal(200, (status(A2)))
    -- an invalid file is refused: the tenants in force stay
    write_file(path .. ".new", "{ not json")
    assert(os.rename(path .. ".new", path))
    sh("sleep 1.2")
    for _ = 1, 4 do assert.equal(200, (status(A2))) end
    local log = read_file(DIR .. "/error.log") or ""
    assert.truthy(log:find("kept the previous tenants", 1, true), log:sub(-2000))
    assert.falsy(log:find(A2.sk, 1, true) or log:find(A.sk, 1, true), "a secret in the error log")
  end)
end)
