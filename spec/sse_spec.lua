-- Server-side encryption (objstore.ops.sse): SSE-C, SSE-KMS and SSE-S3
-- options turned into headers on every operation and transfer, the
-- encryption the server reports parsed into results, and SSENotApplied
-- when a server ignores what was asked. Against rgw 16 (SSE-C with
-- rgw_crypt_require_ssl=false, SSE-KMS with its testing backend: key ids
-- testkey-1 and testkey-2) and Swift s3api (which has no SSE).
local objstore = require "objstore"
local core = require "objstore.core"
local checksum = require "objstore.checksum"
local servers = require "servers"

math.randomseed(os.time() + math.floor(os.clock() * 1e6))

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

local MiB = 1024 * 1024
local unpack = table.unpack or unpack

describe("sse options (no server)", function()
  local c = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "s" }
  local oss = objstore.new{ endpoint = "http://oss-cn-hangzhou.aliyuncs.com", access_key = "a", secret_key = "s",
    provider = "oss", region = "cn-hangzhou" }

  local function headers_of(client, name, ...)
    local req = assert(client:prepare(name, ...))
    local h = {}
    for k, v in pairs(req.headers) do h[k:lower()] = v end
    return h
  end

  it("turns an SSE-C key into algorithm, base64 key and key MD5 on PUT, GET, HEAD and UploadPart", function()
    local key = random_bytes(32)
    local want = { algorithm = "AES256", key = core.encode.base64_encode(key), md5 = checksum.md5_base64(key) }
    for _, args in ipairs{ { "put_object", "b", "k", "x", { sse_customer_key = key } },
      { "get_object", "b", "k", { sse_customer_key = key } },
      { "head_object", "b", "k", { sse_customer_key = key } },
      { "upload_part", "b", "k", "id", 1, "x", { sse_customer_key = key } },
      { "create_multipart_upload", "b", "k", { sse_customer_key = key } } } do
      local h = headers_of(c, unpack(args))
      assert.equals(want.algorithm, h["x-amz-server-side-encryption-customer-algorithm"], args[1])
      assert.equals(want.key, h["x-amz-server-side-encryption-customer-key"], args[1])
      assert.equals(want.md5, h["x-amz-server-side-encryption-customer-key-md5"], args[1])
    end
  end)

  it("sends the copy-source key headers on CopyObject and UploadPartCopy", function()
    local src, dst = random_bytes(32), random_bytes(32)
    for _, h in ipairs{
      headers_of(c, "copy_object", "b", "d", { bucket = "b", key = "s" }, { copy_source_sse_customer_key = src,
        sse_customer_key = dst }),
      headers_of(c, "upload_part_copy", "b", "d", "id", 1, { bucket = "b", key = "s" },
        { copy_source_sse_customer_key = src, sse_customer_key = dst }) } do
      assert.equals(core.encode.base64_encode(src), h["x-amz-copy-source-server-side-encryption-customer-key"])
      assert.equals(checksum.md5_base64(src), h["x-amz-copy-source-server-side-encryption-customer-key-md5"])
      assert.equals("AES256", h["x-amz-copy-source-server-side-encryption-customer-algorithm"])
      assert.equals(core.encode.base64_encode(dst), h["x-amz-server-side-encryption-customer-key"])
    end
  end)

  it("sends SSE-KMS with key id and base64 JSON context", function()
    local h = headers_of(c, "put_object", "b", "k", "x", { sse = "aws:kms", sse_kms_key_id = "testkey-1",
      sse_kms_context = { project = "p1" } })
    assert.equals("aws:kms", h["x-amz-server-side-encryption"])
    assert.equals("testkey-1", h["x-amz-server-side-encryption-aws-kms-key-id"])
    assert.equals('{"project":"p1"}', core.encode.base64_decode(h["x-amz-server-side-encryption-context"]))
  end)

  it("uses the x-oss- headers on OSS (AES256, KMS with key id and SM4 data cipher, SM4)", function()
    local h = headers_of(oss, "put_object", "bkt", "k", "x", { sse = "KMS", sse_kms_key_id = "kid",
      sse_data_encryption = "SM4" })
    assert.equals("KMS", h["x-oss-server-side-encryption"])
    assert.equals("kid", h["x-oss-server-side-encryption-key-id"])
    assert.equals("SM4", h["x-oss-server-side-data-encryption"])
    assert.is_nil(h["x-amz-server-side-encryption"])
    local sm4 = headers_of(oss, "put_object", "bkt", "k", "x", { sse = "SM4" })
    assert.equals("SM4", sm4["x-oss-server-side-encryption"])
  end)

  it("raises on misuse without ever showing the key", function()
    local key31 = "KEYMARKER" .. string.rep("z", 22)
    local function raised(client, ...)
      local ok, err = pcall(client.put_object, client, ...)
      assert.is_false(ok)
      return err
    end
    local err = raised(c, "b", "k", "x", { sse_customer_key = key31 })
    assert.matches("objstore.client.put_object: argument #4 %(opts.sse_customer_key%): must be a 32%-byte", err)
    assert.is_nil(err:find("KEYMARKER", 1, true))
    assert.matches("opts.sse%): must be one of 'AES256', 'aws:kms'", raised(c, "b", "k", "x", { sse = "aes256" }))
    assert.matches("opts.sse_kms_key_id%): must be a non%-empty string, with sse = 'aws:kms'",
      raised(c, "b", "k", "x", { sse = "AES256", sse_kms_key_id = "k1" }))
    assert.matches("opts.sse%): cannot be combined with sse_customer_key",
      raised(c, "b", "k", "x", { sse = "AES256", sse_customer_key = random_bytes(32) }))
    assert.matches("opts.sse_customer_key%): customer%-provided keys %(SSE%-C%) are an S3 feature",
      raised(oss, "bkt", "k", "x", { sse_customer_key = random_bytes(32) }))
    assert.matches("must be one of 'AES256', 'KMS', 'SM4'", raised(oss, "bkt", "k", "x", { sse = "aws:kms" }))
  end)

  it("presign signs the encryption headers and never puts the key into the URL", function()
    local key = random_bytes(32)
    local url = c:presign("PUT", "b", "k", { sse_customer_key = key, time = 1700000000 })
    local signed = url:match("X%-Amz%-SignedHeaders=([^&]+)")
    assert.truthy(signed:find("x-amz-server-side-encryption-customer-algorithm", 1, true), signed)
    assert.truthy(signed:find("x-amz-server-side-encryption-customer-key", 1, true), signed)
    assert.is_nil(url:find(core.encode.base64_encode(key):sub(1, 20), 1, true))
  end)
end)

for _, srv in ipairs(servers.list()) do
  describe("sse on " .. srv.name .. " #server", function()
    local c, bucket, dir
    setup(function()
      c = servers.client(srv)
      bucket = servers.bucket_name("h12b-sse")
      assert(c:create_bucket(bucket))
      dir = servers.tmpdir()
    end)
    teardown(function()
      servers.cleanup(c, bucket)
      os.execute("rm -rf " .. servers.q(dir))
    end)

    if srv.name == "swift" then
      it("reports SSENotApplied for SSE-C, which Swift s3api ignores, and passes on its 501 for SSE-S3/KMS", function()
        local _, err = c:put_object(bucket, "ssec", "secret bytes", { sse_customer_key = random_bytes(32) })
        assert.equals("SSENotApplied", err.code)
        assert.matches("did not confirm the encryption asked for %(SSE%-C", err.message)
        assert.matches("may be stored unencrypted", err.message)
        -- It was: Swift returns it to a GET without any key.
        assert.equals("secret bytes", assert(c:get_object(bucket, "ssec")).body)
        local _, aerr = c:put_object(bucket, "s3", "x", { sse = "AES256" })
        assert.equals("NotImplemented", aerr.code)
        assert.equals(501, aerr.status)
        local _, kerr = c:put_object(bucket, "kms", "x", { sse = "aws:kms", sse_kms_key_id = "testkey-1" })
        assert.equals(501, kerr.status)
        local null = io.open("/dev/null", "rb")
        local _, merr = c:upload_stream(bucket, "mp", null, { sse_customer_key = random_bytes(32) })
        null:close()
        assert.equals("SSENotApplied", merr.code)
      end)
      return
    end

    it("SSE-C: round trip, the key needed on GET and HEAD, a wrong key refused", function()
      local key, body = random_bytes(32), random_bytes(1000)
      local put = assert(c:put_object(bucket, "ssec", body, { sse_customer_key = key }))
      assert.equals("AES256", put.sse_customer_algorithm)
      assert.equals(checksum.md5_base64(key), put.sse_customer_key_md5)
      local got = assert(c:get_object(bucket, "ssec", { sse_customer_key = key }))
      assert.equals(body, got.body)
      assert.equals("AES256", got.sse_customer_algorithm)
      assert(c:head_object(bucket, "ssec", { sse_customer_key = key }))
      local _, err = c:get_object(bucket, "ssec")
      assert.equals(400, err.status)
      assert.equals("InvalidArgument", err.code)
      assert.matches("Customer provided keys", err.message)
      local _, werr = c:get_object(bucket, "ssec", { sse_customer_key = random_bytes(32) })
      assert.equals(400, werr.status)
      assert.matches("MD5 hash of the key did not match", werr.message)
      local _, herr = c:head_object(bucket, "ssec")
      assert.equals(400, herr.status)
    end)

    it("SSE-C: multipart upload_file, download_file, upload_stream, copy_object and copy_large", function()
      local key, key2 = random_bytes(32), random_bytes(32)
      local path = dir .. "/big"
      local data = random_bytes(64 * 1024):rep(11 * 16 + 3) -- 11 MiB + 192 KiB: 3 parts of 5 MiB
      servers.write_file(path, data)
      local up = assert(c:upload_file(bucket, "mp", path, { part_size = 5 * MiB, sse_customer_key = key }))
      assert.equals(3, up.parts)
      local _, nerr = c:get_object(bucket, "mp")
      assert.equals(400, nerr.status)
      local down = assert(c:download_file(bucket, "mp", dir .. "/back",
        { sse_customer_key = key, part_size = 5 * MiB }))
      assert.equals(#data, down.size)
      assert.is_true(servers.read_file(dir .. "/back") == data)
      -- An SSE-C ETag proves nothing; the CRC-64/NVME upload_file stored does.
      assert.is_true(down.verified)
      assert.is_nil(down.notices)
      local f = io.open(path, "rb")
      local st = assert(c:upload_stream(bucket, "stream", f, { part_size = 5 * MiB, sse_customer_key = key }))
      f:close()
      assert.equals(3, st.parts)
      assert.is_true(assert(c:get_object(bucket, "stream", { sse_customer_key = key })).body == data)
      -- A multipart stream carries no CRC (unknown at Create): nothing can verify it.
      local sd = assert(c:download_file(bucket, "stream", dir .. "/back2",
        { sse_customer_key = key, part_size = 5 * MiB }))
      assert.is_true(servers.read_file(dir .. "/back2") == data)
      assert.is_false(sd.verified)
      assert.matches("SSE%-KMS or SSE%-C", sd.notices[1])
      -- Copies. rgw 16 answers 501 to a CopyObject whose source is SSE-C,
      -- and stores a copy asked to be SSE-C unencrypted (objstore says so).
      assert(c:put_object(bucket, "small", "small body", { sse_customer_key = key }))
      local _, cerr = c:copy_object(bucket, "small2", { bucket = bucket, key = "small" },
        { copy_source_sse_customer_key = key,
        sse_customer_key = key2 })
      assert.equals(501, cerr.status)
      assert(c:put_object(bucket, "plain", "plain body"))
      local _, perr = c:copy_object(bucket, "plain2", { bucket = bucket, key = "plain" }, { sse_customer_key = key2 })
      assert.equals("SSENotApplied", perr.code)
      -- UploadPartCopy of an SSE-C source works on rgw with the same key on both sides.
      local cl = assert(c:copy_large(bucket, "mp2", { bucket = bucket, key = "mp" }, { part_size = 5 * MiB,
        multipart_threshold = 1,
        copy_source_sse_customer_key = key, sse_customer_key = key }))
      assert.equals(3, cl.parts)
      assert.is_true(assert(c:get_object(bucket, "mp2", { sse_customer_key = key })).body == data)
      local _, gerr = c:get_object(bucket, "mp2")
      assert.equals(400, gerr.status)
      -- Without the source's key the source cannot be read.
      local _, lerr = c:copy_large(bucket, "mp3", { bucket = bucket, key = "mp" }, { part_size = 5 * MiB,
        multipart_threshold = 1 })
      assert.equals(400, lerr.status)
    end)

    it("SSE-KMS: the key id and mode come back in the results of PUT, HEAD, GET and transfers", function()
      local put = assert(c:put_object(bucket, "kms", "kms body", { sse = "aws:kms", sse_kms_key_id = "testkey-1",
        sse_kms_context = { team = "h12b" } }))
      assert.equals("aws:kms", put.sse)
      assert.equals("testkey-1", put.kms_key_id)
      local head = assert(c:head_object(bucket, "kms"))
      assert.equals("aws:kms", head.sse)
      assert.equals("testkey-1", head.kms_key_id)
      local got = assert(c:get_object(bucket, "kms"))
      assert.equals("kms body", got.body)
      local path = dir .. "/kms"
      local data = random_bytes(1024):rep(6 * 1024)
      servers.write_file(path, data)
      local up = assert(c:upload_file(bucket, "kms-mp", path, { part_size = 5 * MiB, sse = "aws:kms",
        sse_kms_key_id = "testkey-2" }))
      assert.equals(2, up.parts)
      local h2 = assert(c:head_object(bucket, "kms-mp"))
      assert.equals("testkey-2", h2.kms_key_id)
      assert.is_true(assert(c:get_object(bucket, "kms-mp")).body == data)
      local _, err = c:put_object(bucket, "kms-bad", "x", { sse = "aws:kms", sse_kms_key_id = "no-such-key" })
      assert.equals(403, err.status)
      assert.matches("no%-such%-key", err.message)
    end)

    it("SSE-S3: rgw 16 accepts AES256 but does not confirm it, and objstore says so", function()
      local _, err = c:put_object(bucket, "aes", "x", { sse = "AES256" })
      assert.equals("SSENotApplied", err.code)
      assert.matches("x%-amz%-server%-side%-encryption: AES256; it answered nothing", err.message)
      local _, merr = c:create_multipart_upload(bucket, "aes-mp", { sse = "AES256" })
      assert.equals("SSENotApplied", merr.code)
      -- The upload it created was aborted.
      local list = assert(c:list_multipart_uploads(bucket, { prefix = "aes-mp" }))
      assert.equals(0, #list.uploads)
    end)

    it("presigned PUT and GET with SSE-C work when the caller sends the key headers", function()
      local key = random_bytes(32)
      local sse = require "objstore.ops.sse"
      local hdrs = sse.key_headers(c, "presign", 4, { sse_customer_key = key })
      local http = assert(core.http.session())
      local opts = { sse_customer_key = key }
      local res = assert(http:request{ method = "PUT", url = c:presign("PUT", bucket, "pre", opts),
        headers = hdrs, body = "presigned" })
      assert.equals(200, res.status)
      local get = assert(http:request{ method = "GET", url = c:presign("GET", bucket, "pre", opts),
        headers = hdrs })
      assert.equals(200, get.status)
      assert.equals("presigned", get.body)
      http:close()
    end)
  end)
end
