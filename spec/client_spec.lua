-- objstore client against real S3 servers (Ceph radosgw and, when
-- configured, Swift's s3api). Tagged "server": make test starts both.
local servers = require "servers"
local objstore = require "objstore"
local checksum = require "objstore.checksum"
local lfs = require "lfs"

local AWKWARD_KEYS = { "with space.txt", "unicode-\195\169\228\184\173\240\159\152\128.bin", "plus+sign",
  "percent%41%", "q?mark", "hash#tag", "eq=and&amp", "double//slash", "trailing/", "tilde~star*(paren)!'",
  "dots/./and/../x", "semi;colon,comma$dollar@at" }

local tmpdir = servers.tmpdir

for _, srv in ipairs(servers.list()) do
  describe("client on " .. srv.name .. " #server", function()
    local c, bucket, dir

    setup(function()
      c = servers.client(srv)
      bucket = servers.bucket_name("cl")
      assert(c:create_bucket(bucket))
      dir = tmpdir()
    end)

    teardown(function()
      servers.cleanup(c, bucket)
      servers.sh("rm -rf " .. servers.q(dir))
    end)

    describe("buckets", function()
      it("lists, heads and locates the bucket", function()
        local l = assert(c:list_buckets())
        local found = false
        for _, b in ipairs(l.buckets) do
          if b.name == bucket then found = true end
        end
        assert.is_true(found)
        assert.is_true(c:bucket_exists(bucket))
        assert.is_false(c:bucket_exists(bucket .. "-nope"))
        assert.is_string(assert(c:get_bucket_location(bucket)).location)
      end)

      it("refuses to delete a bucket that is not empty (409)", function()
        local b2 = servers.bucket_name("full")
        assert(c:create_bucket(b2))
        assert(c:put_object(b2, "x", "x"))
        local ok, err = c:delete_bucket(b2)
        assert.is_nil(ok)
        assert.equals(409, err.status)
        assert.equals("BucketNotEmpty", err.code)
        assert.matches("DeleteBucket " .. b2, tostring(err), 1, true)
        assert.is_true(servers.cleanup(c, b2))
      end)

      it("gets and sets canned ACLs", function()
        local acl = assert(c:get_bucket_acl(bucket))
        assert.is_table(acl.grants)
        assert(c:put_bucket_acl(bucket, "public-read"))
        if not srv.skip.acl_grants then
          acl = assert(c:get_bucket_acl(bucket))
          local all_users = false
          for _, g in ipairs(acl.grants) do
            if g.grantee and g.grantee.uri and g.grantee.uri:match("AllUsers") then all_users = true end
          end
          assert.is_true(all_users)
        end
        assert(c:put_bucket_acl(bucket, "private"))
      end)

      it("puts, gets and deletes a bucket policy", function()
        if srv.skip.policy then return pending("no bucket policy on " .. srv.name) end
        local policy = { Version = "2012-10-17", Statement = { { Sid = "read", Effect = "Allow",
          Principal = "*", Action = "s3:GetObject", Resource = "arn:aws:s3:::" .. bucket .. "/*" } } }
        assert(c:put_bucket_policy(bucket, policy))
        local got = assert(c:get_bucket_policy(bucket))
        assert.matches("s3:GetObject", got.policy)
        assert(c:delete_bucket_policy(bucket))
        local _, err = c:get_bucket_policy(bucket)
        assert.equals(404, err.status)
      end)

      it("puts, reads and removes an object's tags", function()
        if srv.skip.tagging then return pending("no object tagging on " .. srv.name) end
        assert(c:put_object(bucket, "tagged/k", "x"))
        local got = assert(c:get_object_tagging(bucket, "tagged/k"))
        assert.same({}, got.tags)
        assert(c:put_object_tagging(bucket, "tagged/k", { project = "alpha", ["cost center"] = "r&d <1>", empty = "" }))
        got = assert(c:get_object_tagging(bucket, "tagged/k"))
        assert.same({ project = "alpha", ["cost center"] = "r&d <1>", empty = "" }, got.tags)
        -- a put replaces the whole set
        assert(c:put_object_tagging(bucket, "tagged/k", { only = "one" }))
        assert.same({ only = "one" }, assert(c:get_object_tagging(bucket, "tagged/k")).tags)
        assert(c:delete_object_tagging(bucket, "tagged/k"))
        assert.same({}, assert(c:get_object_tagging(bucket, "tagged/k")).tags)
        local _, err = c:get_object_tagging(bucket, "tagged/missing")
        assert.equals(404, err.status)
        assert.equals("NoSuchKey", err.code)
        -- misuse raises before anything is sent
        assert.has_error(function() c:put_object_tagging(bucket, "tagged/k", { a = 1 }) end)
        local eleven = {}
        for i = 1, 11 do eleven["k" .. i] = "v" end
        assert.has_error(function() c:put_object_tagging(bucket, "tagged/k", eleven) end)
        -- a tag XML cannot carry: the operation's own argument error, naming the tag
        for _, tags in ipairs({ { a = "x\0y" }, { ["\255"] = "v" }, { a = "\239\191\190" } }) do
          local ok, e = pcall(c.put_object_tagging, c, bucket, "tagged/k", tags)
          assert.is_false(ok)
          assert.matches("put_object_tagging: argument #3 %(tags", tostring(e))
        end
        local _, e2 = pcall(c.put_object_tagging, c, bucket, "tagged/k", { [1] = "x" })
        assert.no_match("got got", tostring(e2), 1, true)
        assert(c:delete_object(bucket, "tagged/k"))
      end)

      it("turns versioning on and reads versions", function()
        if srv.skip.versioning then return pending("versioning is not tested on " .. srv.name) end
        local b2 = servers.bucket_name("ver")
        assert(c:create_bucket(b2))
        assert.is_nil(assert(c:get_bucket_versioning(b2)).status)
        assert(c:put_bucket_versioning(b2, "Enabled"))
        assert.equals("Enabled", assert(c:get_bucket_versioning(b2)).status)
        local v1 = assert(c:put_object(b2, "k", "one"))
        local v2 = assert(c:put_object(b2, "k", "two"))
        assert.is_string(v1.version_id)
        assert.are_not.equal(v1.version_id, v2.version_id)
        assert.equals("one", assert(c:get_object(b2, "k", { version_id = v1.version_id })).body)
        local vs = assert(c:list_object_versions(b2))
        assert.equals(2, #vs.versions)
        local d = assert(c:delete_object(b2, "k"))
        assert.is_true(d.delete_marker)
        vs = assert(c:list_object_versions(b2))
        assert.equals(1, #vs.delete_markers)
        assert.is_true(servers.cleanup(c, b2))
      end)
    end)

    describe("objects", function()
      it("puts a string with metadata and reads it back with head and get", function()
        local body = ("objstore "):rep(1000)
        local put = assert(c:put_object(bucket, "dir/meta.txt", body, { metadata = { Owner = "lua", n = 5 },
          cache_control = "no-cache" }))
        assert.equals('"' .. checksum.md5_hex(body) .. '"', put.etag)
        local h = assert(c:head_object(bucket, "dir/meta.txt"))
        assert.equals(#body, h.content_length)
        assert.equals("text/plain", h.content_type)
        assert.equals("lua", h.metadata.owner)
        assert.equals("5", h.metadata.n)
        local g = assert(c:get_object(bucket, "dir/meta.txt"))
        assert.equals(body, g.body)
        assert.equals(put.etag, g.etag)
      end)

      it("uploads from a file path, a file handle and a reader", function()
        local path = dir .. "/src.bin"
        local data = {}
        for i = 1, 50000 do data[i] = string.char(i % 256) end
        data = table.concat(data)
        servers.write_file(path, data)
        assert(c:put_object(bucket, "from-path", { path = path }))
        local f = assert(io.open(path, "rb"))
        assert(c:put_object(bucket, "from-handle", f))
        f:close()
        local pos = 0
        local function reader()
          if pos >= #data then return nil end
          local chunk = data:sub(pos + 1, pos + 7000)
          pos = pos + #chunk
          return chunk
        end
        assert(c:put_object(bucket, "from-reader", reader, { length = #data }))
        pos = 0
        assert(c:put_object(bucket, "from-reader-unsized", reader))
        -- a handle that cannot seek (a pipe) is read once, like a reader
        local pipe = assert(io.popen("cat " .. servers.q(path), "r"))
        assert(c:put_object(bucket, "from-pipe", pipe))
        pipe:close()
        -- a write-only handle is a runtime error, not a raise
        local wpipe = assert(io.popen("cat > /dev/null", "w"))
        local _, werr = c:put_object(bucket, "from-write-pipe", wpipe)
        wpipe:close()
        assert.equals("ReaderError", werr and werr.code)
        for _, k in ipairs{ "from-path", "from-handle", "from-reader", "from-reader-unsized", "from-pipe" } do
          assert.equals(data, assert(c:get_object(bucket, k)).body, k)
        end
        assert.equals("application/octet-stream", assert(c:head_object(bucket, "from-path")).content_type)
      end)

      it("rejects a wrong Content-MD5 (the server checks it)", function()
        local _, err = c:put_object(bucket, "bad-md5", "hello", { content_md5 = checksum.md5_base64("other") })
        assert.is_table(err)
        assert.equals(400, err.status)
        assert.equals("BadDigest", err.code)
        assert.is_false(err.retryable)
      end)

      it("downloads to a file and to a sink, whole and by range", function()
        local body = ("0123456789"):rep(100)
        assert(c:put_object(bucket, "ranged", body))
        local path = dir .. "/out.txt"
        local r = assert(c:get_object(bucket, "ranged", { file = path }))
        assert.equals(path, r.file)
        assert.equals(body, servers.read_file(path))
        local parts = {}
        assert(c:get_object(bucket, "ranged", { sink = function(chunk) parts[#parts + 1] = chunk return true end }))
        assert.equals(body, table.concat(parts))
        local g = assert(c:get_object(bucket, "ranged", { range = { 10, 19 } }))
        assert.equals("0123456789", g.body)
        assert.matches("^bytes 10%-19/1000$", g.content_range)
        assert.equals("89", assert(c:get_object(bucket, "ranged", { range = "bytes=998-" })).body)
      end)

      it("leaves no file behind when a download fails", function()
        local path = dir .. "/missing.txt"
        local r, err = c:get_object(bucket, "no/such/key", { file = path })
        assert.is_nil(r)
        assert.equals("NoSuchKey", err.code)
        assert.equals(404, err.status)
        assert.is_nil(lfs.attributes(path))
        for name in lfs.dir(dir) do
          assert.is_nil(name:find("objstore%-tmp"), "left behind: " .. name)
        end
      end)

      it("honours conditional requests", function()
        local put = assert(c:put_object(bucket, "cond", "v1"))
        local _, err = c:get_object(bucket, "cond", { if_none_match = put.etag })
        assert.equals(304, err.status)
        _, err = c:get_object(bucket, "cond", { if_match = '"00000000000000000000000000000000"' })
        assert.equals(412, err.status)
        assert.equals("v1", assert(c:get_object(bucket, "cond", { if_match = put.etag })).body)
        if not srv.skip.conditional_put then
          local _, perr = c:put_object(bucket, "cond", "v2", { if_none_match = "*" })
          assert.equals(412, perr.status)
        end
      end)

      it("overrides response headers", function()
        assert(c:put_object(bucket, "override", "x"))
        local g = assert(c:get_object(bucket, "override", { response_content_type = "application/x-test",
          response_content_disposition = 'attachment; filename="a b.txt"' }))
        assert.equals("application/x-test", g.content_type)
        assert.equals('attachment; filename="a b.txt"', g.content_disposition)
      end)

      it("copies with COPY and REPLACE metadata", function()
        assert(c:put_object(bucket, "copy-src", "copied", { metadata = { a = "1" }, content_type = "text/x-a" }))
        assert(c:copy_object(bucket, "copy-same", { bucket = bucket, key = "copy-src" }))
        local h = assert(c:head_object(bucket, "copy-same"))
        assert.equals("1", h.metadata.a)
        assert.equals("text/x-a", h.content_type)
        assert(c:copy_object(bucket, "copy-new", { bucket = bucket, key = "copy-src" }, { metadata = { b = "2" },
          content_type = "text/x-b" }))
        h = assert(c:head_object(bucket, "copy-new"))
        assert.is_nil(h.metadata.a)
        assert.equals("2", h.metadata.b)
        assert.equals("text/x-b", h.content_type)
        assert.equals("copied", assert(c:get_object(bucket, "copy-new")).body)
      end)

      it("deletes one and many objects, in batches of 1000", function()
        assert(c:put_object(bucket, "del-one", "x"))
        assert(c:delete_object(bucket, "del-one"))
        assert.is_false(c:object_exists(bucket, "del-one"))
        local keys = {}
        for i = 1, 1003 do keys[i] = string.format("many/%05d", i) end
        local reqs = 0
        for _, k in ipairs(keys) do
          assert(c:put_object(bucket, k, "", { content_md5 = false }))
          reqs = reqs + 1
        end
        local r = assert(c:delete_objects(bucket, keys))
        assert.equals(1003, #r.deleted)
        assert.equals(0, #r.errors)
        local left = assert(c:list_objects(bucket, { prefix = "many/" }))
        assert.equals(0, #left.contents)
      end)

      it("round-trips awkward keys", function()
        for _, k in ipairs(AWKWARD_KEYS) do
          assert(c:put_object(bucket, "awk/" .. k, "body:" .. k))
        end
        for _, k in ipairs(AWKWARD_KEYS) do
          assert.equals("body:" .. k, assert(c:get_object(bucket, "awk/" .. k)).body, k)
        end
        local seen = {}
        for o in c:list_objects_iter(bucket, { prefix = "awk/" }) do seen[o.key] = true end
        for _, k in ipairs(AWKWARD_KEYS) do assert.is_true(seen["awk/" .. k], k) end
        local url = assert(c:presign("GET", bucket, "awk/" .. AWKWARD_KEYS[1]))
        local ok, out = servers.sh("curl -sf " .. servers.q(url))
        assert.is_true(ok, out)
        assert.equals("body:" .. AWKWARD_KEYS[1], out)
      end)
    end)

    describe("listing", function()
      setup(function()
        for _, k in ipairs{ "l/a/1", "l/a/2", "l/b/1", "l/c", "l/d", "l/e" } do assert(c:put_object(bucket, k, k)) end
      end)

      it("lists with prefix, delimiter and start_after", function()
        local r = assert(c:list_objects(bucket, { prefix = "l/", delimiter = "/" }))
        local keys, prefixes = {}, {}
        for _, o in ipairs(r.contents) do keys[#keys + 1] = o.key end
        for _, p in ipairs(r.common_prefixes) do prefixes[#prefixes + 1] = p.prefix end
        assert.same({ "l/c", "l/d", "l/e" }, keys)
        assert.same({ "l/a/", "l/b/" }, prefixes)
        assert.equals(3, r.contents[1].size)
        r = assert(c:list_objects(bucket, { prefix = "l/", start_after = "l/b/1" }))
        assert.equals("l/c", r.contents[1].key)
      end)

      it("pages transparently with v2 and v1", function()
        for _, v1 in ipairs{ false, true } do
          local n = 0
          for o, err in c:list_objects_iter(bucket, { prefix = "l/", max_keys = 2, v1 = v1 }) do
            assert.is_truthy(o, tostring(err))
            n = n + 1
          end
          assert.equals(6, n)
        end
      end)

      it("yields an error from the iterator, then stops", function()
        local results = {}
        for o, err in c:list_objects_iter(bucket .. "-missing") do results[#results + 1] = { o, err } end
        assert.equals(1, #results)
        assert.is_false(results[1][1])
        assert.equals("NoSuchBucket", results[1][2].code)
      end)
    end)

    describe("multipart primitives", function()
      it("creates, uploads, copies a part, lists, completes; the ETag is MD5-of-MD5s", function()
        local p1 = ("a"):rep(5 * 1024 * 1024)
        local p2 = ("b"):rep(1024)
        local up = assert(c:create_multipart_upload(bucket, "mp/obj.bin"))
        local r1 = assert(c:upload_part(bucket, "mp/obj.bin", up.upload_id, 1, p1))
        local r2 = assert(c:upload_part(bucket, "mp/obj.bin", up.upload_id, 2, p2))
        local listed = assert(c:list_parts(bucket, "mp/obj.bin", up.upload_id))
        assert.equals(2, #listed.parts)
        assert.equals(r1.etag, listed.parts[1].etag)
        local uploads = assert(c:list_multipart_uploads(bucket, { prefix = "mp/" }))
        assert.equals(1, #uploads.uploads)
        assert(c:complete_multipart_upload(bucket, "mp/obj.bin", up.upload_id, {
          { part_number = 2, etag = r2.etag }, { part_number = 1, etag = r1.etag } }))
        local h = assert(c:head_object(bucket, "mp/obj.bin"))
        assert.equals(#p1 + #p2, h.content_length)
        assert.equals('"' .. checksum.multipart_etag{ checksum.md5(p1), checksum.md5(p2) } .. '"', h.etag)
        -- a part copied from that object
        local up2 = assert(c:create_multipart_upload(bucket, "mp/copy.bin"))
        local cp = assert(c:upload_part_copy(bucket, "mp/copy.bin", up2.upload_id, 1, { bucket = bucket,
          key = "mp/obj.bin" },
          { range = { #p1 - 10, #p1 + 9 } }))
        assert(c:complete_multipart_upload(bucket, "mp/copy.bin", up2.upload_id, { { part_number = 1,
          etag = cp.etag } }))
        assert.equals(("a"):rep(10) .. ("b"):rep(10), assert(c:get_object(bucket, "mp/copy.bin")).body)
      end)

      it("aborts an upload", function()
        local up = assert(c:create_multipart_upload(bucket, "mp/aborted"))
        assert(c:upload_part(bucket, "mp/aborted", up.upload_id, 1, "x"))
        assert(c:abort_multipart_upload(bucket, "mp/aborted", up.upload_id))
        local _, err = c:list_parts(bucket, "mp/aborted", up.upload_id)
        assert.equals(404, err.status)
        -- rgw answers NoSuchKey here where S3 says NoSuchUpload
        assert.is_truthy(err.code == "NoSuchUpload" or err.code == "NoSuchKey", err.code)
      end)
    end)

    describe("failures", function()
      it("reports a bad secret without showing it", function()
        local bad = servers.client(srv, { secret_key = "not-the-secret-XYZ" })
        local _, err = bad:list_buckets()
        assert.equals(403, err.status)
        assert.is_truthy(err.code == "SignatureDoesNotMatch" or err.code == "AccessDenied")
        assert.is_nil(tostring(err):find("not-the-secret-XYZ", 1, true))
        for _, v in pairs(err) do
          if type(v) == "string" then assert.is_nil(v:find("not-the-secret-XYZ", 1, true)) end
        end
      end)

      it("reports a server that is down as a retryable transport error", function()
        local down = objstore.new{ endpoint = "http://127.0.0.1:9", access_key = "a", secret_key = "b",
          connect_timeout = 2 }
        local _, err = down:head_bucket("b")
        assert.is_table(err)
        assert.is_true(err.retryable)
        assert.equals("HeadBucket", err.op)
        assert.is_nil(err.status)
      end)

      it("corrects a skewed clock from the server and re-signs", function()
        local skewed = servers.client(srv)
        skewed.clock_skew = -3600 -- as if the local clock were an hour slow
        local retried = 0
        local r = assert(skewed:send(require("objstore.engine.request").new{ op = "ListBuckets", method = "GET",
          on_retry = function(e) retried = retried + 1; assert.equals("RequestTimeTooSkewed", e.code) end }))
        assert.equals(200, r.status)
        assert.equals(1, retried)
        assert.is_true(math.abs(skewed.clock_skew) < 300)
        -- later requests use the learned offset at once
        assert(skewed:list_buckets())
      end)

      it("verifies TLS by default: a self-signed server fails, insecure or its CA file succeeds", function()
        -- A local HTTPS server (nginx, 127.0.0.1 only, gone after 60 s at the
        -- latest) with a self-signed certificate for IP 127.0.0.1 that answers
        -- every request with a ListAllMyBucketsResult.
        local d, pid = tmpdir(), nil
        finally(function()
          servers.sh((pid and ("kill " .. pid .. "; sleep 0.2; ") or "") .. "rm -rf " .. servers.q(d))
        end)
        local cert, key = d .. "/cert.pem", d .. "/key.pem"
        assert(servers.sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
          .. " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " .. servers.q(key)
          .. " -out " .. servers.q(cert)))
        local function listening(p)
          return (servers.sh("timeout 2 bash -c " .. servers.q("exec 3<>/dev/tcp/127.0.0.1/" .. p)))
        end
        local port = 18443
        while listening(port) do port = port + 1 end
        local body = '<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult'
          .. ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>hb</ID><DisplayName>hb</DisplayName></Owner>'
          .. '<Buckets><Bucket><Name>hb-tls</Name><CreationDate>2024-01-15T08:30:00.000Z</CreationDate></Bucket>'
          .. '</Buckets></ListAllMyBucketsResult>'
        servers.write_file(d .. "/nginx.conf", table.concat({
          "master_process off; daemon off; worker_processes 1;",
          "pid " .. d .. "/nginx.pid; error_log " .. d .. "/error.log;",
          "events { worker_connections 16; }",
          "http { access_log off;",
          "  client_body_temp_path " .. d .. "; proxy_temp_path " .. d .. "; fastcgi_temp_path " .. d .. ";",
          "  uwsgi_temp_path " .. d .. "; scgi_temp_path " .. d .. ";",
          "  server { listen 127.0.0.1:" .. port .. " ssl;",
          "    ssl_certificate " .. cert .. "; ssl_certificate_key " .. key .. ";",
          "    location / { default_type application/xml; return 200 '" .. body .. "'; } } }",
        }, "\n"))
        local ok, out = servers.sh("(timeout 60 nginx -e " .. servers.q(d .. "/error.log") .. " -p " .. servers.q(d)
          .. " -c " .. servers.q(d .. "/nginx.conf") .. " >/dev/null 2>&1 & echo $!)")
        pid = assert(ok and tonumber(out:match("(%d+)")), out)
        local up = false
        for _ = 1, 50 do
          up = listening(port)
          if up then break end
          servers.sh("sleep 0.1")
        end
        assert(up, "the TLS server did not start: " .. tostring(servers.read_file(d .. "/error.log")))
        local function tls_client(tls)
          return objstore.new{ endpoint = "https://127.0.0.1:" .. port, access_key = "a", secret_key = "b",
            connect_timeout = 2, timeout = 10, retry = { max_attempts = 1 }, tls = tls }
        end

        -- verification on (the default): the self-signed certificate is refused
        local res, err = tls_client():list_buckets()
        assert.is_nil(res)
        assert.is_table(err)
        assert.equals("TLSError", err.code)
        assert.is_nil(err.status)

        -- verification off, and verification against the certificate as CA:
        -- the handshake succeeds and the server's answer comes back
        for _, tls in ipairs({ { insecure = true }, { ca_file = cert } }) do
          local r, e = tls_client(tls):list_buckets()
          assert.is_nil(e)
          assert.equals("hb-tls", r.buckets[1].name)
        end
      end)

      it("names the operation, bucket and key in errors", function()
        local _, err = c:head_object(bucket, "nope/nope")
        assert.equals(404, err.status)
        assert.equals("NoSuchKey", err.code)
        assert.equals("HeadObject", err.op)
        assert.matches("HeadObject " .. bucket .. "/nope/nope", tostring(err), 1, true)
        local _, gerr = c:get_object(bucket, "nope/nope")
        assert.is_string(gerr.request_id)
      end)
    end)
  end)
end
