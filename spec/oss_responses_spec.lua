-- Alibaba Cloud OSS responses as Alibaba's documentation prints them
-- (spec/fixtures/vectors/oss-responses/, each with its source in the
-- README there), fed through objstore's real response handling: a client
-- with provider = "oss" whose transport answers every request with the
-- sample, so the ops' own parsers, the error mapping and the pipeline's
-- checks run as they do against OSS. The parsed fields are compared with
-- the sample's values. No server.
local objstore = require "objstore"

local DIR = "spec/fixtures/vectors/oss-responses/"

local function read(name)
  local f = assert(io.open(DIR .. name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- A sample as a transport result: the status line, headers (lower-case
-- names, repeats joined with ", ") and the body, which starts at the first
-- line that begins with "<" (the documents print no blank line before it)
-- or after a blank line. A "[n bytes of object data]" body becomes n bytes.
local function sample(name)
  local text = read(name)
  local lines = {}
  for line in (text:gsub("\r\n", "\n")):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local status = tonumber(lines[1]:match("^HTTP/1%.1 (%d%d%d)"))
  assert(status, name .. ": no status line")
  local headers, i = {}, 2
  while i <= #lines and lines[i] ~= "" and not lines[i]:find("^<") and not lines[i]:find("^%[") do
    local n, v = lines[i]:match("^([^:]+):%s*(.-)%s*$")
    assert(n, name .. ": not a header line: " .. lines[i])
    n = n:lower()
    headers[n] = headers[n] and (headers[n] .. ", " .. v) or v
    i = i + 1
  end
  if lines[i] == "" then i = i + 1 end
  local body = table.concat(lines, "\n", i)
  local elided = body:match("^%[(%d+) bytes of object data%]$")
  if elided then body = ("x"):rep(tonumber(elided)) end
  return { status = status, headers = headers, body = body, bytes = #body, sent = 0 }
end

--- A client whose every request is answered with `res` (a copy); the
-- requests are kept in `sent`.
local function client(res)
  local sent = {}
  local t = {
    request = function(_, req)
      sent[#sent + 1] = req
      local r = {}
      for k, v in pairs(res) do r[k] = v end
      if req.on_head then req.on_head(r.status, r.headers) end
      if type(req.sink) == "function" and r.status < 300 and r.body ~= "" then
        req.sink(r.body)
        r.body = nil
      end
      return r
    end,
  }
  local c = objstore.new{ provider = "oss", region = "cn-hangzhou", endpoint = "https://oss-cn-hangzhou.aliyuncs.com",
    access_key = "LTAI5tExampleAccessKey", secret_key = "ExampleSecretKey", transport = t,
    retry = { max_attempts = 1 } }
  return c, sent
end

describe("OSS responses from Alibaba's documentation", function()
  it("GetObject with Range: 206, the uppercase quoted ETag, Content-Range, the request id", function()
    local c = client(sample("get-object-range.http"))
    local r, err = c:get_object("oss-example", "oss.jpg", { range = { 100, 900 } })
    assert.is_table(r, tostring(err))
    assert.equal('"5B3C1A2E05E1B002CC607C*****"', r.etag)
    assert.equal("bytes 100-900/344606", r.content_range)
    assert.equal(801, r.content_length)
    assert.equal(801, #r.body)
    assert.equal("image/jpg", r.content_type)
    assert.equal("bytes", r.accept_ranges)
    assert.equal("Fri, 24 Feb 2012 06:07:48 GMT", r.last_modified)
    assert.equal("28f6-15ea-8224-234e-c0ce407*****", r.request_id)
  end)

  it("GetObject with custom response headers: each under its own name, whatever its case", function()
    local c = client(sample("get-object-custom-headers.http"))
    local r, err = c:get_object("oss-example", "oss.jpg", { response_content_type = "text" })
    assert.is_table(r, tostring(err))
    assert.equal('"5B3C1A2E053D1B002CC607*****"', r.etag)
    assert.equal("attachment; filename:testing.txt", r.content_disposition)
    assert.equal("Chinese", r.content_language)
    assert.equal("utf-8", r.content_encoding)
    assert.equal("text", r.content_type)
    assert.equal("no-cache", r.cache_control)
    assert.equal("Fri, 24 Feb 2012 17:00:00 GMT", r.expires)
    assert.equal(344606, r.content_length)
  end)

  it("GetObject of a delete marker: NoSuchKey (404) with the <Error>'s fields", function()
    local c = client(sample("get-object-delete-marker.http"))
    local r, err = c:get_object("versioning-get", "example")
    assert.is_nil(r)
    assert.equal("NoSuchKey", err.code)
    assert.equal(404, err.status)
    assert.equal("The specified key does not exist.", err.message)
    assert.equal("5CAC0FEADE0170*****", err.request_id)
    assert.equal("versioning-get.oss-cn-hangzhou.aliyun*****", err.host_id)
    assert.is_false(err.retryable)
    assert.equal("example", err.key)
  end)

  it("HeadObject: size, ETag, type, storage class; SSE-KMS and its key id", function()
    local c = client(sample("head-object.http"))
    local r, err = c:head_object("oss-example", "oss.jpg")
    assert.is_table(r, tostring(err))
    assert.equal(344606, r.content_length)
    assert.equal('"fba9dede5f27731c9771645a3986****"', r.etag)
    assert.equal("image/jpg", r.content_type)
    assert.equal("Archive", r.storage_class)
    assert.equal("559CC9BDC755F95A6448****", r.request_id)
    c = client(sample("head-object-sse-kms.http"))
    r, err = c:head_object("oss-example", "oss.jpg")
    assert.is_table(r, tostring(err))
    assert.equal("KMS", r.server_side_encryption)
    assert.equal("9468da86-3509-4f8d-a61e-6eab1eac****", r.headers["x-oss-server-side-encryption-key-id"])
    assert.equal("559CC9BDC755F95A64485981", r.request_id)
  end)

  it("InitiateMultipartUpload: the upload id", function()
    local c = client(sample("initiate-multipart-upload.http"))
    local r, err = c:create_multipart_upload("oss-example", "multipart.data")
    assert.is_table(r, tostring(err))
    assert.equal("0004B9894A22E5B1888A1E29F823****", r.upload_id)
    assert.equal("42c25703-7503-fbd8-670a-bda01eae****", r.request_id)
  end)

  it("CompleteMultipartUpload: ETag, Location, Key (EncodingType url decoded), the version id", function()
    local parts = { { part_number = 1, etag = '"3349DC700140D7F86A0784842780****"' } }
    local c = client(sample("complete-multipart-upload-encoding-url.http"))
    local r, err = c:complete_multipart_upload("oss-example", "multipart.data", "0004B9B2D2F7815C432C9057C031****",
      parts)
    assert.is_table(r, tostring(err))
    assert.equal('"B864DB6A936D376F9F8D3ED3BBE540****"', r.etag)
    assert.equal("oss-example", r.bucket)
    assert.equal("multipart.data", r.key)
    -- url-decoding leaves the document's stray space in place
    assert.equal("http://oss-example.oss-cn-hangzhou.aliyuncs.com /multipart.data", r.location)
    c = client(sample("complete-multipart-upload-versioned.http"))
    r, err = c:complete_multipart_upload("oss-example", "multipart.data", "63C06A5CFF6F4AE4A6BB3AD7F01C****", parts)
    assert.is_table(r, tostring(err))
    assert.equal('"097DE458AD02B5F89F9D0530231876****"', r.etag)
    assert.equal("http://oss-example.oss-cn-hangzhou.aliyuncs.com/multipart.data", r.location)
    assert.equal("CAEQMxiBgID6v86D0BYiIDc3ZDI0YTBjZGQzYjQ2Mjk4OWVjYWNiMDljYzhlN****", r.version_id)
  end)

  it("DeleteMultipleObjects in quiet mode: the empty body is no failure (a key not in errors was deleted)", function()
    local c, sent = client(sample("delete-multiple-objects-quiet.http"))
    local keys = { "multipart.data", "test.jpg", "demo.jpg" }
    local r = c:delete_objects("oss-example", keys, { quiet = true })
    assert.equal(1, #sent)
    assert.matches("<Quiet>true</Quiet>", sent[1].body, 1, true)
    assert.same({}, r.errors)
    -- quiet: the server names no deleted key, and objstore invents none
    assert.same({}, r.deleted)
    for _, k in ipairs(keys) do assert.matches("<Key>" .. k .. "</Key>", sent[1].body, 1, true) end
  end)

  it("ListObjectsV2: contents, owners, the continuation token", function()
    local c = client{ status = 200, headers = { ["content-type"] = "application/xml" },
      body = read("list-objects-v2-continuation-owner.xml") }
    local r, err = c:list_objects("oss-example", { start_after = "b", max_keys = 3, fetch_owner = true })
    assert.is_table(r, tostring(err))
    assert.is_true(r.is_truncated)
    assert.equal("CgJiYw--", r.next_continuation_token)
    assert.equal(3, #r.contents)
    assert.equal("b/c", r.contents[1].key)
    assert.equal(25, r.contents[1].size)
    assert.equal('"35A27C2B9EAEEB6F48FD7FB5861D****"', r.contents[1].etag)
    assert.equal("STANDARD", r.contents[1].storage_class)
    assert.equal("2020-05-18T05:45:54.000Z", r.contents[1].last_modified)
    assert.equal("1686240967192623", r.contents[1].owner.id)
    assert.equal("ba", r.contents[2].key)
    assert.equal("bc", r.contents[3].key)
  end)

  it("an error answer: Code, Message, RequestId, HostId, EC (body); EC from x-oss-ec without a body", function()
    local c = client(sample("error-missing-argument.http"))
    local r, err = c:get_object("oss-example", "abc.zip")
    assert.is_nil(r)
    assert.equal(400, err.status)
    assert.equal("MissingArgument", err.code)
    assert.equal("Missing Some Required Arguments.", err.message)
    assert.equal("57ABD896CCB80C366955****", err.request_id)
    assert.equal("oss-example.oss-cn-hangzhou.aliyuncs.com", err.host_id)
    assert.equal("0016-00000502", err.ec)
    assert.equal("https://api.aliyun.com/troubleshoot?q=0016-00000502", err.server.recommend_doc)
    assert.is_false(err.retryable)
    -- The documented 403 head with the documented body.
    local res = sample("error-headers-403.http")
    res.body = read("error-body-malformed-xml.xml")
    c = client(res)
    r, err = c:put_object("oss-example", "abc.zip", "x")
    assert.is_nil(r)
    assert.equal(403, err.status)
    assert.equal("MalformedXML", err.code)
    assert.equal("The XML you provided was not well-formed or did not validate against our published schema.",
      err.message)
    assert.equal("57ABD896CCB80C366955****", err.request_id)
    assert.equal("oss-cn-hangzhou.aliyuncs.com", err.host_id)
    assert.equal("0031-00000001", err.ec)
    -- A HEAD's error answer has no body: the header's EC and request id.
    c = client(sample("error-headers-403.http"))
    r, err = c:head_object("oss-example", "abc.zip")
    assert.is_nil(r)
    assert.equal(403, err.status)
    assert.equal("AccessDenied", err.code)
    assert.equal("636B68BA80DA8539399F****", err.request_id)
    assert.equal("0003-00000001", err.ec)
  end)
end)
