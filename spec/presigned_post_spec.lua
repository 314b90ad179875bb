-- Browser uploads (client:presigned_post): a curl -F form upload to rgw
-- with the fields succeeds (object, type and metadata checked), one that
-- breaks a condition is refused by the server; the policy document and
-- signature equal boto3's generate_presigned_post (S3) and ali-oss's
-- calculatePostSignature / signPostObjectPolicyV4 (OSS) at a fixed clock.
local servers = require "servers"
local cjson = require "cjson"
local objstore = require "objstore"
local core = require "objstore.core"
local ali = require "ali_oss_run"

local q = servers.q
local b64decode = core.encode.base64_decode

--- curl -F for each field (`override`: fields replaced, false removes),
-- then the file. Returns (ok, "<status>\n<body>").
local function post(form, path, override, filename)
  local args = {}
  local fields = {}
  for k, v in pairs(form.fields) do fields[k] = v end
  for k, v in pairs(override or {}) do fields[k] = v or nil end
  local names = {}
  for k in pairs(fields) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do args[#args + 1] = "--form-string " .. q(k .. "=" .. fields[k]) end
  args[#args + 1] = "-F " .. q("file=@" .. path .. (filename and (";filename=" .. filename) or ""))
  return servers.sh("curl -sS -w '\\n%{http_code}' " .. table.concat(args, " ") .. " " .. q(form.url))
end

local function status_of(out)
  return out:match("(%d%d%d)%s*$"), out:gsub("\n%d%d%d%s*$", "")
end

local srv = servers.list()[1]

describe("presigned_post on " .. (srv and srv.name or "no server") .. " #server", function()
  local c, bucket, dir

  setup(function()
    c = servers.client(srv, { addressing = "path" })
    bucket = servers.bucket_name("h13a-pp")
    assert(c:create_bucket(bucket))
    dir = servers.tmpdir()
  end)

  teardown(function()
    servers.cleanup(c, bucket)
    servers.sh("rm -rf " .. q(dir))
  end)

  it("a form upload with the fields succeeds; type, metadata and status as the policy says", function()
    local path = dir .. "/hello.txt"
    servers.write_file(path, "hello from a browser")
    local form = assert(c:presigned_post(bucket, "forms/hello.txt", { expires_in = 300, conditions = {
      content_length_range = { 1, 1024 }, content_type = "text/plain", metadata = { owner = "h13a", ["x-y"] = "z" },
      success_action_status = 201, acl = "private", tagging = { project = "h13a", ["a b"] = "c&d" } } }))
    assert.equals(srv.endpoint .. "/" .. bucket, form.url)
    local tags = assert(require("objstore.xml").parse(form.fields.tagging))
    assert.same({ { key = "a b", value = "c&d" }, { key = "project", value = "h13a" } }, tags.tag_set.tag)
    assert.is_nil(form.fields.secret_key)
    for _, v in pairs(form.fields) do assert.is_nil(v:find(srv.secret_key, 1, true)) end
    local ok, out = post(form, path)
    assert.is_true(ok, out)
    local status, body = status_of(out)
    assert.equals("201", status, body)
    assert.matches("<Key>forms/hello.txt</Key>", body)
    assert.equals("hello from a browser", assert(c:get_object(bucket, "forms/hello.txt")).body)
    local h = assert(c:head_object(bucket, "forms/hello.txt"))
    assert.equals("text/plain", h.content_type)
    assert.equals("h13a", h.metadata.owner)
    assert.equals("z", h.metadata["x-y"])
    -- The tags, as awscli reads them back.
    local tok, tout = servers.sh("AWS_ACCESS_KEY_ID=" .. q(srv.access_key) .. " AWS_SECRET_ACCESS_KEY="
      .. q(srv.secret_key) .. " AWS_REGION=" .. q(srv.region) .. " AWS_CONFIG_FILE=/dev/null"
      .. " AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true /usr/bin/aws s3api get-object-tagging"
      .. " --endpoint-url " .. q(srv.endpoint) .. " --bucket " .. q(bucket) .. " --key forms/hello.txt")
    assert.is_true(tok, tout)
    local set = {}
    for _, t in ipairs(cjson.decode(tout).TagSet) do set[t.Key] = t.Value end
    assert.same({ project = "h13a", ["a b"] = "c&d" }, set)
  end)

  it("${filename} and a prefix take the uploaded file's name", function()
    local path = dir .. "/local.bin"
    servers.write_file(path, "named by the browser")
    local form = assert(c:presigned_post(bucket, "inbox/", { conditions = { content_length_range = { 0, 100 } } }))
    assert.equals("inbox/${filename}", form.fields.key)
    local ok, out = post(form, path, nil, "photo one.jpg")
    assert.is_true(ok, out)
    local status, body = status_of(out)
    assert.equals("204", status, body)
    assert.equals("named by the browser", assert(c:get_object(bucket, "inbox/photo one.jpg")).body)
    -- Another key under the prefix is allowed by starts-with …
    ok, out = post(form, path, { key = "inbox/chosen" })
    assert.is_true(ok, out)
    assert.equals("204", (status_of(out)))
    -- … one outside it is not.
    ok, out = post(form, path, { key = "elsewhere/x" })
    assert.is_true(ok, out)
    status, body = status_of(out)
    assert.equals("403", status, body)
    assert.matches("AccessDenied", body)
    assert.is_false((c:object_exists(bucket, "elsewhere/x")))
  end)

  it("refuses a form that breaks a condition", function()
    local small, big = dir .. "/small.txt", dir .. "/big.txt"
    servers.write_file(small, "ok")
    servers.write_file(big, string.rep("x", 4096))
    local form = assert(c:presigned_post(bucket, "strict/${filename}", { conditions = {
      content_length_range = { 1, 1000 }, starts_with = { ["Content-Type"] = "image/" } } }))
    assert.equals("image/", form.fields["Content-Type"])
    local ok, out = post(form, small, { ["Content-Type"] = "image/png" }, "fine.png")
    assert.is_true(ok, out)
    assert.equals("204", (status_of(out)))
    -- Too large.
    ok, out = post(form, big, { ["Content-Type"] = "image/png" }, "big.png")
    assert.is_true(ok, out)
    local status, body = status_of(out)
    assert.equals("400", status, body)
    assert.matches("EntityTooLarge", body)
    -- A content type outside the starts-with.
    ok, out = post(form, small, { ["Content-Type"] = "text/html" }, "page.html")
    assert.is_true(ok, out)
    status, body = status_of(out)
    assert.equals("403", status, body)
    -- An exact content type, a field changed after signing.
    local exact = assert(c:presigned_post(bucket, "exact.txt", { conditions = { content_type = "text/plain" } }))
    ok, out = post(exact, small, { ["Content-Type"] = "text/html" })
    assert.is_true(ok, out)
    assert.equals("403", (status_of(out)))
    -- A tampered policy.
    ok, out = post(exact, small, { policy = core.encode.base64_encode((b64decode(exact.fields.policy)
      :gsub("exact%.txt", "other.txt"))), key = "other.txt" })
    assert.is_true(ok, out)
    assert.equals("403", (status_of(out)))
    -- Expired.
    local old = assert(c:presigned_post(bucket, "late.txt", { time = os.time() - 120, expires_in = 60 }))
    ok, out = post(old, small)
    assert.is_true(ok, out)
    status, body = status_of(out)
    assert.equals("403", status, body)
    for _, k in ipairs{ "strict/big.png", "strict/page.html", "other.txt", "late.txt" } do
      assert.is_false((c:object_exists(bucket, k)), k)
    end
    assert.is_true((c:object_exists(bucket, "strict/fine.png")))
  end)

  it("raises on misuse", function()
    assert.has_error(function() c:presigned_post(bucket, "k", { conditions = { size = 1 } }) end,
      "objstore.client.presigned_post: argument #3 (opts.conditions.size): is not a condition of presigned_post")
    assert.has_error(function() c:presigned_post(bucket, "k", { expires_in = 604801 }) end)
    assert.has_error(function() c:presigned_post(bucket, "k", { conditions = { content_length_range = { 5, 1 } } }) end)
    assert.has_error(function() c:presigned_post(bucket, "k", { callback = { url = "u", body = "b" } }) end,
      "objstore.client.presigned_post: argument #3 (opts.callback): upload callbacks are an OSS feature")
    assert.has_error(function() c:presigned_post(bucket, "") end)
  end)
end)

local AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
local TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/token+with=chars"
local T = 1735689599

describe("presigned_post equals boto3's generate_presigned_post", function()
  for _, addressing in ipairs{ "path", "virtual" } do
    for _, token in ipairs{ false, true } do
      it(addressing .. " addressing" .. (token and ", session token" or ""), function()
        local endpoint = addressing == "path" and "http://127.0.0.1:7480" or "https://s3.eu-west-1.amazonaws.com"
        local c = objstore.new{ endpoint = endpoint, region = "eu-west-1", access_key = AK, secret_key = SK,
          session_token = token and TOKEN or nil, addressing = addressing,
          transport = { request = function() error("no request may be sent") end } }
        local posts, mine = {}, {}
        local function add(key, opts, fields, conditions)
          opts.time = T
          mine[#mine + 1] = assert(c:presigned_post("bkt-h13a", key, opts))
          posts[#posts + 1] = { bucket = "bkt-h13a", key = key:sub(-1) == "/" and (key .. "${filename}") or key,
            expires = opts.expires_in or 3600, fields = fields, conditions = conditions }
        end
        add("plain.txt", {}, cjson.empty_array, cjson.empty_array)
        add("dir/with space+plus é.txt", { expires_in = 900 }, cjson.empty_array, cjson.empty_array)
        add("uploads/", { expires_in = 60, conditions = { content_length_range = { 0, 1048576 } } }, cjson.empty_array,
          { { "content-length-range", 0, 1048576 } })
        add("img/${filename}", { expires_in = 600, conditions = { content_length_range = { 1, 10 }, starts_with = {
          ["Content-Type"] = "image/", ["x-amz-meta-tag"] = "t" }, acl = "public-read", content_type = "image/png",
          metadata = { b = "2", a = "1" }, success_action_status = "201",
          success_action_redirect = "https://example.com/done?x=1&y=2", tagging = "<Tagging><TagSet/></Tagging>" } },
          { ["Content-Type"] = "image/png", ["x-amz-meta-tag"] = "t", acl = "public-read", ["x-amz-meta-a"] = "1",
            ["x-amz-meta-b"] = "2", success_action_status = "201",
            success_action_redirect = "https://example.com/done?x=1&y=2", tagging = "<Tagging><TagSet/></Tagging>" },
          { { "content-length-range", 1, 10 }, { "starts-with", "$Content-Type", "image/" },
            { "starts-with", "$x-amz-meta-tag", "t" }, { acl = "public-read" }, { ["Content-Type"] = "image/png" },
            { ["x-amz-meta-a"] = "1" }, { ["x-amz-meta-b"] = "2" }, { success_action_status = "201" },
            { success_action_redirect = "https://example.com/done?x=1&y=2" },
            { tagging = "<Tagging><TagSet/></Tagging>" } })
        local tmp = os.tmpname()
        servers.write_file(tmp, cjson.encode{ access_key = AK, secret_key = SK, session_token = token and TOKEN or nil,
          region = "eu-west-1", endpoint = endpoint, addressing = addressing, time = T, posts = posts })
        local ok, out = servers.sh("/usr/bin/python3 spec/support/boto3_presign_post.py < " .. q(tmp))
        os.remove(tmp)
        assert(ok, out)
        local theirs = cjson.decode(out)
        for i, form in ipairs(mine) do
          local t = theirs[i]
          local msg = posts[i].key .. "\n mine:  " .. b64decode(form.fields.policy) .. "\n boto3: "
            .. b64decode(t.fields.policy)
          assert.equals(t.fields.policy, form.fields.policy, msg)
          assert.equals(t.fields["x-amz-signature"], form.fields["x-amz-signature"], msg)
          assert.same(t.fields, form.fields)
          assert.equals((t.url:gsub("/$", "")), (form.url:gsub("/$", "")))
        end
      end)
    end
  end
end)

describe("presigned_post for OSS equals ali-oss", function()
  local cases, forms = {}, {}
  for _, sig in ipairs{ "v1", "v4" } do
    for _, sts in ipairs{ false, true } do
      local id = sig .. (sts and "-sts" or "")
      local c = ali.client(sig, T, sts and ali.TOKEN or nil)
      forms[id] = assert(c:presigned_post("objstore-shape", "user/7/${filename}", { expires_in = 1800, conditions = {
        content_length_range = { 1, 5242880 }, content_type = "image/jpeg", metadata = { uid = "7" },
        success_action_status = 200, acl = "private" },
        callback = { url = "https://app.example.com/cb", body = "key=${object}&uid=${x:uid}",
          body_type = "application/x-www-form-urlencoded" }, callback_vars = { uid = "7" } }))
      cases[#cases + 1] = { id = id, sig = sig, time = T, policy = b64decode(forms[id].fields.policy) }
    end
  end
  local results

  setup(function()
    local tmp = os.tmpname()
    servers.write_file(tmp, cjson.encode{ access_key = ali.AK, secret_key = ali.SK, region = ali.REGION,
      cases = cases })
    local ok, out = servers.sh("node spec/support/ali_oss_post.js < " .. q(tmp))
    os.remove(tmp)
    assert(ok, out)
    results = {}
    for _, r in ipairs(cjson.decode(out).cases) do results[r.id] = r end
  end)

  for _, k in ipairs(cases) do
    it(k.id, function()
      local form, r = forms[k.id], results[k.id]
      assert.equals(r.policy, form.fields.policy, k.policy)
      local f = form.fields
      assert.equals("https://objstore-shape.oss-cn-hangzhou.aliyuncs.com/", form.url)
      assert.equals("image/jpeg", f["Content-Type"])
      assert.equals("7", f["x-oss-meta-uid"])
      assert.equals("private", f["x-oss-object-acl"])
      assert.equals("7", f["x:uid"])
      local cb = cjson.decode(b64decode(f.callback))
      assert.same({ callbackUrl = "https://app.example.com/cb", callbackBody = "key=${object}&uid=${x:uid}",
        callbackBodyType = "application/x-www-form-urlencoded" }, cb)
      if k.sig == "v1" then
        assert.equals(r.signature, f.Signature)
        assert.equals(r.OSSAccessKeyId, f.OSSAccessKeyId)
        assert.is_nil(f["x-oss-signature"])
      else
        assert.equals(r.signature, f["x-oss-signature"])
        assert.equals("OSS4-HMAC-SHA256", f["x-oss-signature-version"])
        assert.equals(ali.AK .. "/20241231/cn-hangzhou/oss/aliyun_v4_request", f["x-oss-credential"])
        assert.equals("20241231T235959Z", f["x-oss-date"])
      end
      assert.equals(k.id:find("sts") and ali.TOKEN or nil, f["x-oss-security-token"])
      assert.matches('"expiration":"2025%-01%-01T00:29:59%.000Z"', k.policy)
      assert.matches('%["starts%-with","%$key","user/7/"%]', k.policy)
    end)
  end
end)
