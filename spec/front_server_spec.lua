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

  -- awscli as tenant t (its config: aws.cfg, no multipart, unless `cfg`
  -- names another file of tmp); returns ok, output.
  local function aws(t, args, cfg)
    local env = client_env(t)
    if cfg then env = env .. "AWS_CONFIG_FILE=" .. q(tmp .. "/" .. cfg) .. " " end
    return sh(env .. "timeout 120 " .. AWS .. " --endpoint-url " .. URL .. " " .. args)
  end

  -- spec/support/front_clients.py as tenant t; returns the decoded JSON.
  local function py(t, args)
    local ok, out = sh(client_env(t) .. "timeout 120 " .. PY .. " spec/support/front_clients.py " .. args)
    local doc = ok and cjson.decode(out:match("[^\n]*\n?$") or "") or nil
    assert(type(doc) == "table", "front_clients.py " .. args .. " failed:\n" .. out)
    return doc
  end

  -- a boto3 call as tenant t: { status, code } or { status, result }
  local function call(t, op, args)
    return py(t, "call " .. op .. " " .. q(args))
  end

  local function on_store_of(store_bucket, key)
    local res = store:get_object(store_bucket, key)
    return res and res.body or nil
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
        data = { store_bucket = shared, prefix = "tenant-a/", allow = { "read", "write", "list", "delete",
          "multipart" } },
        extra = { store_bucket = other, prefix = "x/", allow = { "read", "list" } } } },
      b = { keys = { { access_key = B.ak, secret_key = B.sk } }, buckets = {
        data = { store_bucket = shared, prefix = "tenant-b/", allow = { "read", "write", "list", "delete",
          "multipart" } },
        plain = { store_bucket = shared, prefix = "plain-b/", allow = { "read", "write", "list", "delete" } } },
        bucket_space = { store_bucket = other, prefix = "spaces/b/", allow = { "read", "write", "list", "delete",
          "multipart", "create" } } },
    } }
    write_file(tmp .. "/tenants.json", cjson.encode(tenants))
    A.tenants = tenants
    write_file(tmp .. "/aws.cfg", "[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 1GB\n"
      .. "  addressing_style = path\n")
    -- awscli's defaults: multipart above 8 MiB, 8 MiB parts
    write_file(tmp .. "/aws-mpu.cfg", "[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n")
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
          -- uploads a failed spec left behind would keep the bucket
          local ups = store:list_multipart_uploads(b)
          for _, u in ipairs(ups and ups.uploads or {}) do store:abort_multipart_upload(b, u.key, u.upload_id) end
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

  it("stores a PUT to a presigned URL made by boto3 (curl -T), under the prefix; a changed key is refused", function()
    local f = tmp .. "/pre-put.body"
    write_file(f, "put through a presigned URL")
    local r = py(A, "presign data pre/put.txt put_object")
    local ok, out = sh("timeout 30 curl -sS --max-time 20 -o /dev/null -w '%{http_code}' -T " .. q(f) .. " "
      .. q(r.url))
    assert(ok, out)
    assert.equal("200", out)
    assert.equal("put through a presigned URL", on_store("tenant-a/pre/put.txt"))
    -- the URL signs its key: another key is refused, nothing stored
    ok, out = sh("timeout 30 curl -sS --max-time 20 -o /dev/null -w '%{http_code}' -T " .. q(f) .. " "
      .. q((r.url:gsub("/pre/put%.txt%?", "/pre/other.txt?"))))
    assert(ok, out)
    assert.equal("403", out)
    assert.is_nil(on_store("tenant-a/pre/other.txt"))
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

  it("stores a multipart upload of @aws-sdk/client-s3 v3, each part aws-chunked with its CRC32 trailer", function()
    servers.node_package("@aws-sdk/client-s3")
    local f = tmp .. "/sdk-mpu.bin"
    assert(sh("head -c 12000000 /dev/urandom > " .. q(f)))
    local ok, out = sh(client_env(A) .. "timeout 120 node spec/support/sdkv3_through_front.js data sdk/mpu.bin "
      .. q(f) .. " multipart 2>/dev/null")
    local r = cjson.decode(out:match("[^\n]*\n?$") or "")
    assert(ok, out)
    assert.equal(3, r.parts)
    assert.is_true(r.get_equal)
    assert.is_true(on_store("tenant-a/sdk/mpu.bin") == read_file(f), "the store holds other bytes")
    local head = assert(store:head_object(shared, "tenant-a/sdk/mpu.bin"))
    assert.truthy(head.etag:find([[%-3"?$]]), head.etag)
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
    -- a key named like the error_page URI is the tenant's key, never an
    -- internal location of nginx (its HTML 404)
    assert(store:put_object(shared, "tenant-a/_objstore_s3_error", "a key like the error page"))
    ok, out = sh("timeout 30 " .. base .. q("http://data.front.test:" .. PORT .. "/_objstore_s3_error"))
    assert(ok, out)
    assert.equal("a key like the error page", out)
  end)

  describe("multipart uploads, copies and batch deletes", function()
    -- the upload ids on the store under a store prefix
    local function store_uploads(prefix)
      local res = assert(store:list_multipart_uploads(shared, { prefix = prefix }))
      local ids = {}
      for _, u in ipairs(res.uploads) do ids[#ids + 1] = u.upload_id end
      return ids
    end

    local function awsjson(t, args)
      local ok, out = aws(t, args .. " --output json")
      assert(ok, out)
      return out:find("%S") and cjson.decode(out) or {}
    end

    it("awscli s3 cp of 100 MiB goes up and down by parts, byte-identical, under the prefix", function()
      local big = tmp .. "/mpu.bin"
      assert(sh("head -c 104857600 /dev/urandom > " .. q(big)))
      local ok, out = aws(A, "s3 cp --only-show-errors " .. q(big) .. " s3://data/mpu/big.bin", "aws-mpu.cfg")
      assert(ok, out)
      local head = assert(store:head_object(shared, "tenant-a/mpu/big.bin"))
      -- made of parts (an ETag "<md5>-<parts>"), under A's prefix
      assert.truthy(head.etag:find("%-13\"?$"), head.etag)
      assert.is_true(on_store("tenant-a/mpu/big.bin") == read_file(big), "the object differs on the store")
      ok, out = aws(A, "s3 cp --only-show-errors s3://data/mpu/big.bin " .. q(tmp .. "/mpu.back"), "aws-mpu.cfg")
      assert(ok, out)
      assert.is_true(read_file(tmp .. "/mpu.back") == read_file(big), "the download differs")
      assert.same({}, store_uploads("tenant-a/mpu/"))
      assert(store:delete_object(shared, "tenant-a/mpu/big.bin"))
    end)

    it("rclone copy (multipart), check and sync with a deletion, byte-identical, under the prefix", function()
      -- rclone sends x-amz-acl: private on every upload (the ACL every
      -- object has anyway): taken; any other ACL stays NotImplemented
      local src, back = tmp .. "/rc-src", tmp .. "/rc-back"
      assert(sh("rm -rf " .. q(src) .. " " .. q(back) .. " && mkdir -p " .. q(src .. "/sub dir")
        .. " && head -c 12000000 /dev/urandom > " .. q(src .. "/big.bin") .. " && printf small > "
        .. q(src .. "/small.txt") .. " && printf plus > " .. q(src .. "/sub dir/a+b.txt")))
      local rclone = ("env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null RCLONE_CONFIG_F_TYPE=s3 "
        .. "RCLONE_CONFIG_F_PROVIDER=Other RCLONE_CONFIG_F_ACCESS_KEY_ID=%s RCLONE_CONFIG_F_SECRET_ACCESS_KEY=%s "
        .. "RCLONE_CONFIG_F_ENDPOINT=%s RCLONE_CONFIG_F_REGION=us-east-1 RCLONE_CONFIG_F_FORCE_PATH_STYLE=true "
        .. "timeout 120 rclone -q --s3-no-check-bucket --s3-upload-cutoff 5M --s3-chunk-size 5M "):format(
        q(A.ak), q(A.sk), q(URL))
      local ok, out = sh(rclone .. "copy " .. q(src) .. " f:data/rc")
      assert(ok, out)
      local head = assert(store:head_object(shared, "tenant-a/rc/big.bin"))
      assert.truthy(head.etag:find([[%-3"?$]]), head.etag) -- 3 parts of 5 MB
      assert.equal("plus", on_store("tenant-a/rc/sub dir/a+b.txt"))
      ok, out = sh(rclone .. "copy f:data/rc " .. q(back))
      assert(ok, out)
      assert(sh("diff -r " .. q(src) .. " " .. q(back)))
      ok, out = sh(rclone .. "check " .. q(src) .. " f:data/rc")
      assert(ok, out)
      assert(os.remove(src .. "/small.txt"))
      ok, out = sh(rclone .. "sync " .. q(src) .. " f:data/rc")
      assert(ok, out)
      assert.is_nil(on_store("tenant-a/rc/small.txt"))
      assert.truthy(on_store("tenant-a/rc/big.bin"))
      assert.same({}, store_uploads("tenant-a/rc/"))
      -- another canned ACL is still refused
      local r = call(A, "put_object", '{"Bucket":"data","Key":"rc/pub","Body":"x","ACL":"public-read"}')
      assert.same({ status = 501, code = "NotImplemented" }, r)
    end)

    it("aws s3api: create, upload-part, list-parts, list-multipart-uploads, complete, abort", function()
      local p1, p2 = tmp .. "/part1", tmp .. "/part2"
      write_file(p1, random_hex(2621440))
      write_file(p2, "the last part")
      local up = awsjson(A, "s3api create-multipart-upload --bucket data --key api/obj.bin")
      assert.equal("api/obj.bin", up.Key)
      assert.equal("data", up.Bucket)
      local id = up.UploadId
      local e1 = awsjson(A, "s3api upload-part --bucket data --key api/obj.bin --part-number 1 --upload-id "
        .. q(id) .. " --body " .. q(p1)).ETag
      local e2 = awsjson(A, "s3api upload-part --bucket data --key api/obj.bin --part-number 2 --upload-id "
        .. q(id) .. " --body " .. q(p2)).ETag
      local parts = awsjson(A, "s3api list-parts --bucket data --key api/obj.bin --upload-id " .. q(id)).Parts
      assert.equal(2, #parts)
      assert.same({ 1, e1, 5 * 1024 * 1024 }, { parts[1].PartNumber, parts[1].ETag, parts[1].Size })
      assert.same({ 2, e2, 13 }, { parts[2].PartNumber, parts[2].ETag, parts[2].Size })
      -- B's upload of the same key name is B's: neither sees the other's
      local bup = awsjson(B, "s3api create-multipart-upload --bucket data --key api/obj.bin")
      local ok, out = aws(A, "s3api list-multipart-uploads --bucket data --output json")
      assert(ok, out)
      assert.falsy(out:find("tenant-", 1, true), out)
      local listed = cjson.decode(out).Uploads
      assert.equal(1, #listed)
      assert.same({ "api/obj.bin", id }, { listed[1].Key, listed[1].UploadId })
      listed = awsjson(B, "s3api list-multipart-uploads --bucket data --prefix api/").Uploads
      assert.same({ bup.UploadId }, { listed[1].UploadId })
      assert.equal(1, #listed)
      write_file(tmp .. "/parts.json", cjson.encode({ Parts = { { PartNumber = 1, ETag = e1 },
        { PartNumber = 2, ETag = e2 } } }))
      local done = awsjson(A, "s3api complete-multipart-upload --bucket data --key api/obj.bin --upload-id "
        .. q(id) .. " --multipart-upload " .. q("file://" .. tmp .. "/parts.json"))
      assert.equal("api/obj.bin", done.Key)
      assert.truthy(done.ETag:find("%-2\"$"), done.ETag)
      assert.is_true(on_store("tenant-a/api/obj.bin") == read_file(p1) .. read_file(p2), "the object differs")
      -- abort: B's upload is gone from the store
      ok, out = aws(B, "s3api abort-multipart-upload --bucket data --key api/obj.bin --upload-id " .. q(bup.UploadId))
      assert(ok, out)
      assert.same({}, store_uploads("tenant-b/api/"))
      assert.same({}, store_uploads("tenant-a/api/"))
    end)

    it("boto3: copy_object, upload_part_copy (a range), delete_objects (Quiet and not)", function()
      local src = random_hex(3 * 1024 * 1024)
      assert(store:put_object(shared, "tenant-a/cp/src.bin", src))
      local r = call(A, "copy_object", '{"Bucket":"data","Key":"cp/dst.bin","CopySource":"data/cp/src.bin"}')
      assert.equal(200, r.status)
      assert.equal('"' .. core.hash.tohex(core.hash.md5(src)) .. '"', r.result.CopyObjectResult.ETag)
      assert.is_true(on_store("tenant-a/cp/dst.bin") == src, "the copy differs")
      -- from A's read-only bucket into data
      assert(store:put_object(other, "x/ro.txt", "read-only source"))
      r = call(A, "copy_object", '{"Bucket":"data","Key":"cp/from-extra","CopySource":{"Bucket":"extra",'
        .. '"Key":"ro.txt"}}')
      assert.equal(200, r.status)
      assert.equal("read-only source", on_store("tenant-a/cp/from-extra"))
      -- upload_part_copy: the source whole and a range, completed
      local id = call(A, "create_multipart_upload", '{"Bucket":"data","Key":"cp/parts.bin"}').result.UploadId
      local function part_copy(n, range)
        local args = { Bucket = "data", Key = "cp/parts.bin", UploadId = id, PartNumber = n,
          CopySource = { Bucket = "data", Key = "cp/src.bin" }, CopySourceRange = range }
        local pr = call(A, "upload_part_copy", cjson.encode(args))
        assert.equal(200, pr.status, cjson.encode(pr))
        return pr.result.CopyPartResult.ETag
      end
      local parts = { { PartNumber = 1, ETag = part_copy(1) }, { PartNumber = 2, ETag = part_copy(2, "bytes=10-109") } }
      r = call(A, "complete_multipart_upload", cjson.encode({ Bucket = "data", Key = "cp/parts.bin",
        UploadId = id, MultipartUpload = { Parts = parts } }))
      assert.equal(200, r.status)
      assert.is_true(on_store("tenant-a/cp/parts.bin") == src .. src:sub(11, 110), "the copied parts differ")
      -- delete_objects: un-prefixed results; Quiet lists only failures
      r = call(A, "delete_objects", '{"Bucket":"data","Delete":{"Objects":[{"Key":"cp/dst.bin"},'
        .. '{"Key":"cp/never"},{"Key":"cp/../../tenant-b/private/secret.txt"}]}}')
      assert.equal(200, r.status)
      local deleted = {}
      for _, d in ipairs(r.result.Deleted) do deleted[#deleted + 1] = d.Key end
      table.sort(deleted)
      assert.same({ "cp/dst.bin", "cp/never" }, deleted)
      assert.equal(1, #r.result.Errors)
      assert.same({ "cp/../../tenant-b/private/secret.txt", "InvalidArgument" },
        { r.result.Errors[1].Key, r.result.Errors[1].Code })
      assert.is_nil(on_store("tenant-a/cp/dst.bin"))
      r = call(A, "delete_objects", '{"Bucket":"data","Delete":{"Quiet":true,"Objects":[{"Key":"cp/src.bin"},'
        .. '{"Key":"cp/parts.bin"}]}}')
      assert.equal(200, r.status)
      assert.is_nil(r.result.Deleted)
      assert.is_nil(r.result.Errors)
      assert.is_nil(on_store("tenant-a/cp/src.bin"))
      assert.is_nil(on_store("tenant-a/cp/parts.bin"))
      assert.equal("read-only source", on_store("tenant-a/cp/from-extra"))
      assert(store:delete_object(other, "x/ro.txt"))
    end)
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

    it("B can neither complete, abort, upload to nor list A's upload (same key name, A's upload id)", function()
      local f = tmp .. "/apart"
      write_file(f, "A's only part")
      local id = call(A, "create_multipart_upload", '{"Bucket":"data","Key":"iso/up.bin"}').result.UploadId
      local r = raw(A, "PUT", "/data/iso/up.bin?partNumber=1&uploadId=" .. id, "--body " .. q(f))
      assert.equal(200, r.status, r.body)
      write_file(tmp .. "/complete.xml", '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"'
        .. core.hash.tohex(core.hash.md5("A's only part")) .. '"</ETag></Part></CompleteMultipartUpload>')
      local path = "/data/iso/up.bin?uploadId=" .. id
      refused(raw(B, "POST", path, "--body " .. q(tmp .. "/complete.xml")), 404, "NoSuchUpload")
      refused(raw(B, "DELETE", path), 404, "NoSuchUpload")
      refused(raw(B, "GET", path), 404, "NoSuchUpload")
      refused(raw(B, "PUT", "/data/iso/up.bin?partNumber=2&uploadId=" .. id, "--body " .. q(f)), 404, "NoSuchUpload")
      -- B's listing shows none of A's uploads
      r = raw(B, "GET", "/data?uploads")
      refused(r, 200)
      assert.falsy(r.body:find(id, 1, true), r.body)
      -- A's upload is intact: its one part, and A completes it
      local parts = assert(store:list_parts(shared, "tenant-a/iso/up.bin", id)).parts
      assert.equal(1, #parts)
      assert.is_nil(on_store("tenant-b/iso/up.bin"))
      r = raw(A, "POST", path, "--body " .. q(tmp .. "/complete.xml"))
      assert.equal(200, r.status, r.body)
      assert.equal("A's only part", on_store("tenant-a/iso/up.bin"))
      -- completed again (a client whose answer was lost): 200, as S3; B
      -- with the completed id still gets NoSuchUpload and nothing
      r = raw(A, "POST", path, "--body " .. q(tmp .. "/complete.xml"))
      assert.equal(200, r.status, r.body)
      refused(raw(B, "POST", path, "--body " .. q(tmp .. "/complete.xml")), 404, "NoSuchUpload")
      assert.is_nil(on_store("tenant-b/iso/up.bin"))
      assert.equal("A's only part", on_store("tenant-a/iso/up.bin"))
    end)

    it("refuses a part whose payload does not match x-amz-content-sha256; the part is not stored", function()
      local id = call(A, "create_multipart_upload", '{"Bucket":"data","Key":"iso/bad.bin"}').result.UploadId
      local f = tmp .. "/badpart"
      write_file(f, random_hex(300000))
      local r = raw(A, "PUT", "/data/iso/bad.bin?partNumber=1&uploadId=" .. id, "--body " .. q(f) .. " --sha256 "
        .. ("ab"):rep(32))
      refused(r, 400, "XAmzContentSHA256Mismatch")
      assert.same({}, assert(store:list_parts(shared, "tenant-a/iso/bad.bin", id)).parts)
      -- a wrong x-amz-checksum-crc32 likewise
      r = raw(A, "PUT", "/data/iso/bad.bin?partNumber=1&uploadId=" .. id, "--body " .. q(f)
        .. " --header x-amz-checksum-crc32:AAAAAA==")
      refused(r, 400, "BadDigest")
      assert.same({}, assert(store:list_parts(shared, "tenant-a/iso/bad.bin", id)).parts)
      assert.equal(204, raw(A, "DELETE", "/data/iso/bad.bin?uploadId=" .. id).status)
    end)

    it("a copy source resolves through the copier's own mappings: no other tenant, no '..', no %2e%2e", function()
      -- B names A's buckets: B has no "extra", and "data" is B's own
      local nobucket = { status = 404, code = "NoSuchBucket" }
      assert.same(nobucket, call(B, "copy_object", '{"Bucket":"data","Key":"stolen","CopySource":"extra/ro.txt"}'))
      assert.same(nobucket, call(B, "copy_object", '{"Bucket":"data","Key":"stolen","CopySource":"' .. shared
        .. '/tenant-a/iso/up.bin"}'))
      -- A reaching for B's secret
      for _, src in ipairs({ "data/x/../../tenant-b/private/secret.txt",
        "/data/x/%2e%2e/%2E%2E/tenant-b/private/secret.txt",
        "data%2Fx%2F..%2F..%2Ftenant-b%2Fprivate%2Fsecret.txt" }) do
        refused(raw(A, "PUT", "/data/iso/stolen", "--header " .. q("x-amz-copy-source:" .. src)), 400,
          "InvalidArgument")
      end
      -- decoded once: %252e%252e is the key "%2e%2e/tenant-b/..." in A's prefix, which does not exist
      refused(raw(A, "PUT", "/data/iso/stolen", "--header " .. q("x-amz-copy-source:data/%252e%252e/tenant-b/"
        .. "private/secret.txt")), 404, "NoSuchKey")
      assert.is_nil(on_store("tenant-a/iso/stolen"))
      assert.is_nil(on_store("tenant-b/stolen"))
      -- read on the source, write on the destination
      assert.same({ status = 403, code = "AccessDenied" },
        call(A, "copy_object", '{"Bucket":"extra","Key":"k","CopySource":"data/iso/up.bin"}'))
    end)

    it("refuses UploadPartCopy from a key holding '%' (radosgw 16 aborts on %25); rgw keeps answering", function()
      assert(store:put_object(shared, "tenant-a/iso/pct%25name", "percent"))
      assert(store:put_object(shared, "tenant-a/iso/pct%name", "percent"))
      local id = call(A, "create_multipart_upload", '{"Bucket":"data","Key":"iso/pc.bin"}').result.UploadId
      for _, key in ipairs({ "iso/pct%name", "iso/pct%25name" }) do
        local r = call(A, "upload_part_copy", cjson.encode({ Bucket = "data", Key = "iso/pc.bin", UploadId = id,
          PartNumber = 1, CopySource = { Bucket = "data", Key = key } }))
        assert.same({ status = 400, code = "InvalidArgument" }, r)
      end
      assert(store:head_bucket(shared))
      assert.same({}, assert(store:list_parts(shared, "tenant-a/iso/pc.bin", id)).parts)
      -- CopyObject of the same key works (no crash there)
      local r = call(A, "copy_object", cjson.encode({ Bucket = "data", Key = "iso/pct-copy",
        CopySource = { Bucket = "data", Key = "iso/pct%name" } }))
      assert.equal(200, r.status)
      assert.equal("percent", on_store("tenant-a/iso/pct-copy"))
      assert.equal(204, raw(A, "DELETE", "/data/iso/pc.bin?uploadId=" .. id).status)
    end)

    it("multipart needs `multipart` and `write` on the mapping", function()
      local denied = { status = 403, code = "AccessDenied" }
      assert.same(denied, call(A, "create_multipart_upload", '{"Bucket":"extra","Key":"m"}'))
      assert.same(denied, call(B, "create_multipart_upload", '{"Bucket":"plain","Key":"m"}'))
      assert.same(denied, call(B, "list_multipart_uploads", '{"Bucket":"plain"}'))
      assert.same({}, assert(store:list_multipart_uploads(shared, { prefix = "plain-b/" })).uploads)
    end)

    it("DeleteObjects checks its Content-MD5, needs one, takes at most 1000 keys", function()
      local body = '<Delete><Object><Key>private/secret.txt</Key></Object></Delete>'
      write_file(tmp .. "/del.xml", body)
      refused(raw(B, "POST", "/data?delete", "--body " .. q(tmp .. "/del.xml") .. " --header Content-MD5:"
        .. core.hash.tobase64(core.hash.md5("other"))), 400, "BadDigest")
      refused(raw(B, "POST", "/data?delete", "--body " .. q(tmp .. "/del.xml")), 400, "InvalidRequest")
      refused(raw(B, "POST", "/data?delete", "--body " .. q(tmp .. "/del.xml") .. " --header x-amz-checksum-crc32:"
        .. core.hash.tobase64(core.crc.compute("crc32", "other"))), 400, "BadDigest")
      local many = { "<Delete>" }
      for i = 1, 1001 do many[#many + 1] = "<Object><Key>k" .. i .. "</Key></Object>" end
      many[#many + 1] = "<Object><Key>private/secret.txt</Key></Object></Delete>"
      local big = table.concat(many)
      write_file(tmp .. "/many.xml", big)
      refused(raw(B, "POST", "/data?delete", "--body " .. q(tmp .. "/many.xml") .. " --header Content-MD5:"
        .. core.hash.tobase64(core.hash.md5(big))), 400, "MalformedXML")
      assert.equal(secret, on_store("tenant-b/private/secret.txt"))
      -- A deleting "the same" key deletes A's, never B's
      local r = raw(A, "POST", "/data?delete", "--body " .. q(tmp .. "/del.xml") .. " --header Content-MD5:"
        .. core.hash.tobase64(core.hash.md5(body)))
      refused(r, 200)
      assert.truthy(r.body:find("<Deleted><Key>private/secret.txt</Key></Deleted>", 1, true), r.body)
      assert.equal(secret, on_store("tenant-b/private/secret.txt"))
    end)

    it("puts, reads and removes an object's tags (boto3), on the store under the prefix", function()
      assert.equal(200, call(A, "put_object", '{"Bucket":"data","Key":"tagged","Body":"x"}').status)
      local r = call(A, "put_object_tagging", '{"Bucket":"data","Key":"tagged","Tagging":{"TagSet":['
        .. '{"Key":"project","Value":"alpha"},{"Key":"cost center","Value":"r&d <1>"}]}}')
      assert.equal(200, r.status, cjson.encode(r))
      local stored = assert(store:get_object_tagging(shared, "tenant-a/tagged"))
      assert.same({ project = "alpha", ["cost center"] = "r&d <1>" }, stored.tags)
      r = call(A, "get_object", '{"Bucket":"data","Key":"tagged"}')
      assert.equal(2, r.result.TagCount)
      local eleven = {}
      for i = 1, 11 do eleven[i] = '{"Key":"k' .. i .. '","Value":"v"}' end
      assert.same({ status = 400, code = "InvalidTag" }, call(A, "put_object_tagging",
        '{"Bucket":"data","Key":"tagged","Tagging":{"TagSet":[' .. table.concat(eleven, ",") .. ']}}'))
      r = call(A, "get_object_tagging", '{"Bucket":"data","Key":"tagged"}')
      assert.equal(200, r.status)
      assert.same({ { Key = "cost center", Value = "r&d <1>" }, { Key = "project", Value = "alpha" } },
        r.result.TagSet)
      r = call(A, "delete_object_tagging", '{"Bucket":"data","Key":"tagged"}')
      assert.equal(204, r.status)
      assert.same({}, assert(store:get_object_tagging(shared, "tenant-a/tagged")).tags)
      -- another tenant's object: not by name, and a missing key is NoSuchKey
      assert.same({ status = 404, code = "NoSuchKey" },
        call(B, "get_object_tagging", '{"Bucket":"data","Key":"tagged"}'))
      assert.same({ status = 404, code = "NoSuchKey" }, call(A, "get_object_tagging", '{"Bucket":"data","Key":"none"}'))
      -- a version's tags are not offered
      assert.same({ status = 501, code = "NotImplemented" },
        call(A, "get_object_tagging", '{"Bucket":"data","Key":"tagged","VersionId":"v1"}'))
    end)

    it("answers as S3 where s3-tests compared it with rgw: a copy onto itself, owners, a key too long", function()
      assert.equal(200, call(A, "put_object", '{"Bucket":"data","Key":"self","Body":"x"}').status)
      -- the store's 400 stays a 400 (it was a 500, which boto3 retried)
      assert.same({ status = 400, code = "InvalidRequest" },
        call(A, "copy_object", '{"Bucket":"data","Key":"self","CopySource":{"Bucket":"data","Key":"self"}}'))
      local r = call(A, "list_objects_v2", '{"Bucket":"data","Prefix":"self","FetchOwner":true}')
      assert.equal(200, r.status)
      assert.same({ ID = "a", DisplayName = "a" }, r.result.Contents[1].Owner)
      r = call(A, "list_objects_v2", '{"Bucket":"data","Prefix":"self"}')
      assert.is_nil(r.result.Contents[1].Owner)
      r = call(A, "list_objects", '{"Bucket":"data","Prefix":"self"}')
      assert.same({ ID = "a", DisplayName = "a" }, r.result.Contents[1].Owner)
      assert.same({ status = 400, code = "KeyTooLongError" },
        call(A, "put_object", '{"Bucket":"data","Key":"' .. ("k"):rep(1025) .. '","Body":"x"}'))
    end)

    it("creates, lists, uses and deletes (only empty) buckets in B's bucket space; A has none", function()
      assert.equal(200, call(B, "create_bucket", '{"Bucket":"made-by-b"}').status)
      assert.equal("", on_store_of(other, "spaces/b/.buckets/made-by-b"))
      -- re-created by its owner: 200 and nothing changes (S3 in us-east-1)
      assert.equal(200, call(B, "create_bucket", '{"Bucket":"made-by-b"}').status)
      assert.equal("", on_store_of(other, "spaces/b/.buckets/made-by-b"))
      assert.equal(200, call(B, "create_bucket", '{"Bucket":"data"}').status)
      local r = call(B, "list_buckets", "{}")
      local names = {}
      for _, b in ipairs(r.result.Buckets) do names[#names + 1] = b.Name end
      assert.same({ "data", "made-by-b", "plain" }, names)
      assert.equal(200, call(B, "head_bucket", '{"Bucket":"made-by-b"}').status)
      assert.equal(200, call(B, "put_object", '{"Bucket":"made-by-b","Key":"k","Body":"in a made bucket"}').status)
      assert.equal("in a made bucket", on_store_of(other, "spaces/b/made-by-b/k"))
      r = call(B, "list_objects_v2", '{"Bucket":"made-by-b"}')
      assert.equal("k", r.result.Contents[1].Key)
      assert.equal(200, call(B, "copy_object",
        '{"Bucket":"data","Key":"from-made","CopySource":{"Bucket":"made-by-b","Key":"k"}}').status)
      assert.equal("in a made bucket", on_store("tenant-b/from-made"))
      -- A: no bucket space, and B's bucket is not A's
      assert.same({ status = 501, code = "NotImplemented" }, call(A, "create_bucket", '{"Bucket":"made-by-a"}'))
      assert.same({ status = 404, code = "NoSuchBucket" },
        call(A, "get_object", '{"Bucket":"made-by-b","Key":"k"}'))
      for _, name in ipairs({ "Bad_Name", "192.168.5.4", "a.-b", "a-.b" }) do
        assert.same({ status = 400, code = "InvalidBucketName" },
          call(B, "create_bucket", '{"Bucket":"' .. name .. '"}'), name)
      end
      -- only an empty bucket is deleted
      assert.same({ status = 409, code = "BucketNotEmpty" }, call(B, "delete_bucket", '{"Bucket":"made-by-b"}'))
      assert.equal("in a made bucket", on_store_of(other, "spaces/b/made-by-b/k"))
      assert.equal(204, call(B, "delete_object", '{"Bucket":"made-by-b","Key":"k"}').status)
      assert.equal(204, call(B, "delete_bucket", '{"Bucket":"made-by-b"}').status)
      assert.is_nil(on_store_of(other, "spaces/b/.buckets/made-by-b"))
      assert.same({ status = 404, code = "NoSuchBucket" }, call(B, "delete_bucket", '{"Bucket":"made-by-b"}'))
      assert.same({ status = 404, code = "NoSuchBucket" },
        call(B, "put_object", '{"Bucket":"made-by-b","Key":"k","Body":"x"}'))
      assert.is_nil(on_store_of(other, "spaces/b/made-by-b/k"))
    end)

    it("lists the one version of each object of an unversioned store bucket, and deletes version null", function()
      assert.equal(200, call(A, "put_object", '{"Bucket":"data","Key":"ver/one","Body":"1"}').status)
      assert.equal(200, call(A, "put_object", '{"Bucket":"data","Key":"ver/two","Body":"22"}').status)
      local r = call(A, "list_object_versions", '{"Bucket":"data","Prefix":"ver/","MaxKeys":1}')
      assert.equal(200, r.status)
      assert.equal(1, #r.result.Versions)
      assert.same({ "ver/one", "null", true, 1 }, { r.result.Versions[1].Key, r.result.Versions[1].VersionId,
        r.result.Versions[1].IsLatest, r.result.Versions[1].Size })
      assert.is_true(r.result.IsTruncated)
      r = call(A, "list_object_versions", '{"Bucket":"data","Prefix":"ver/","KeyMarker":"'
        .. r.result.NextKeyMarker .. '","VersionIdMarker":"null"}')
      assert.same({ "ver/two" }, { r.result.Versions[1].Key })
      assert.is_false(r.result.IsTruncated)
      -- s3-tests' clean-up: DeleteObjects of version "null", with the governance bypass
      r = call(A, "delete_objects", '{"Bucket":"data","BypassGovernanceRetention":true,"Delete":{"Quiet":true,'
        .. '"Objects":[{"Key":"ver/one","VersionId":"null"},{"Key":"ver/two","VersionId":"null"}]}}')
      assert.equal(200, r.status)
      assert.is_nil(on_store("tenant-a/ver/one"))
      assert.is_nil(on_store("tenant-a/ver/two"))
      -- another version id is not one of these
      assert.same({ status = 501, code = "NotImplemented" }, call(A, "delete_objects",
        '{"Bucket":"data","Delete":{"Objects":[{"Key":"ver/one","VersionId":"3sL4kqtJlcpXroDTDmJ"}]}}'))
    end)

    it("answers 501 NotImplemented for versions, bucket creation, ACLs (boto3)", function()
      local r = call(A, "get_object", '{"Bucket":"data","Key":"c","VersionId":"3sL4kqtJlcpXroDTDmJ"}')
      assert.same({ status = 501, code = "NotImplemented" }, r)
      r = call(A, "create_bucket", '{"Bucket":"newbucket"}')
      assert.same({ status = 501, code = "NotImplemented" }, r)
      r = call(A, "put_object_acl", '{"Bucket":"data","Key":"k","ACL":"public-read"}')
      assert.same({ status = 501, code = "NotImplemented" }, r)
      -- headers it does not understand are refused, not dropped
      r = call(A, "put_object", '{"Bucket":"data","Key":"t","Body":"x","Tagging":"a=b"}')
      assert.same({ status = 501, code = "NotImplemented" }, r)
      r = call(A, "put_object", '{"Bucket":"data","Key":"t","Body":"x","ServerSideEncryption":"AES256"}')
      assert.same({ status = 501, code = "NotImplemented" }, r)
      assert.is_nil(on_store("tenant-a/t"))
      -- a conditional header the operation does not honour: refused, never
      -- dropped (the client would believe its write was conditional)
      for _, case in ipairs{
        { "PUT /data/cond-copy", "--header x-amz-copy-source:data/c --header " .. q("If-None-Match:*") },
        { "POST " .. q("/data/cond-copy?uploads"), "--header " .. q('If-Match:"abc"') },
        { "PUT /data/cond-copy", "--header " .. q("If-Modified-Since:Tue, 01 Dec 2026 10:00:00 GMT") },
      } do
        r = py(A, "raw " .. case[1] .. " " .. case[2])
        assert.equal(501, r.status, r.body)
        assert.equal("NotImplemented", code_of(r.body))
      end
      assert.is_nil(on_store("tenant-a/cond-copy"))
      -- more than 100 request headers: refused before anything else
      local hs = {}
      for i = 1, 101 do hs[#hs + 1] = "-H " .. q("x-filler-" .. i .. ": 1") end
      local ok, out = sh("timeout 30 curl -sS --max-time 20 -w '\n%{http_code}' " .. table.concat(hs, " ") .. " "
        .. q(URL .. "/data/k"))
      assert(ok, out)
      assert.equal("400", out:match("(%d+)$"))
      assert.equal("RequestHeaderSectionTooLarge", code_of(out))
      assert.is_nil(on_store("tenant-a/t"))
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
    -- 8 requests at once (curl --aws-sigv4), so that every worker answers
    -- some (one after the other, one worker may take them all, and the
    -- other keep the tenants it read long ago): their statuses
    local function statuses(t)
      local cmd = ("curl -s -o /dev/null -w '%%{http_code}\\n' --max-time 20 --aws-sigv4 aws:amz:us-east-1:s3 "
        .. "-H 'x-amz-content-sha256: %s' --user %s %s"):format(core.hash.tohex(core.hash.sha256("")),
        q(t.ak .. ":" .. t.sk), q(URL .. "/data/?list-type=2&max-keys=1"))
      local ok, out = sh("for i in 1 2 3 4 5 6 7 8; do timeout 30 " .. cmd .. " & done; wait")
      assert(ok, out)
      local list = {}
      for code in out:gmatch("%d+") do list[#list + 1] = tonumber(code) end
      assert.equal(8, #list, out)
      return list
    end
    local function all(t, want_status)
      for _, st in ipairs(statuses(t)) do assert.equal(want_status, st) end
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
      all(t, want_status)
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
    all(A2, 200)
    local log = read_file(DIR .. "/error.log") or ""
    assert.truthy(log:find("kept the previous tenants", 1, true), log:sub(-2000))
    assert.falsy(log:find(A2.sk, 1, true) or log:find(A.sk, 1, true), "a secret in the error log")
  end)
end)
