-- objstore.xml and core.xml: parsing S3/OSS responses, limits, hostile
-- documents, escaping and the build -> parse round trip.
local core = require "objstore.core"
local xml = require "objstore.xml"

local cxml = core.xml

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local FIX = "spec/fixtures/vectors/xml/"

-- A parse failure: an error value with the shared metatable; returns its
-- message.
local function parse_error(err, retryable)
  assert.equal(core.error_mt, getmetatable(err))
  assert.equal("MalformedResponse", err.code)
  assert.is_string(err.message)
  assert.is_boolean(err.retryable)
  if retryable ~= nil then assert.equal(retryable, err.retryable) end
  return err.message
end

local function is_result(t, err)
  return type(t) == "table" or (getmetatable(err) == core.error_mt and type(err.message) == "string")
end

-- Every byte 0x01..0x1F, which XML 1.0 cannot carry literally.
local CONTROLS = {}
for b = 1, 31 do CONTROLS[#CONTROLS + 1] = string.char(b) end
CONTROLS = table.concat(CONTROLS)

describe("core.xml.parse", function()
  it("returns a generic element tree with local names and namespaces", function()
    local t = assert(cxml.parse('<?xml version="1.0"?><R xmlns="urn:a" xmlns:x="urn:x">'
      .. '<A>1</A><x:B k="v" x:t="T">2</x:B><C><D>3</D></C></R>'))
    assert.equal("R", t.name)
    assert.equal("urn:a", t.ns)
    assert.is_nil(t.text)
    assert.equal(3, #t)
    assert.same({ name = "A", ns = "urn:a", text = "1" }, t[1])
    assert.same({ name = "B", ns = "urn:x", text = "2", attr = { k = "v", t = "T" } }, t[2])
    assert.equal("C", t[3].name)
    assert.same({ name = "D", ns = "urn:a", text = "3" }, t[3][1])
  end)

  it("keeps leaf text exactly: whitespace, entities, character references, CDATA", function()
    local t = assert(cxml.parse("<R><A> lead and trail </A><B>&amp;&lt;&gt;&quot;&apos;&#233;&#x20AC;</B>"
      .. "<C><![CDATA[<raw> & ]]>tail</C><D></D><E/><F>\t\n</F><G>a<!-- c -->b</G></R>"))
    assert.equal(" lead and trail ", t[1].text)
    assert.equal("&<>\"'\195\169\226\130\172", t[2].text)
    assert.equal("<raw> & tail", t[3].text)
    assert.equal("", t[4].text)
    assert.equal("", t[5].text)
    assert.equal("\t\n", t[6].text)
    assert.equal("ab", t[7].text)
  end)

  it("keeps the leading space of the OSS sample <Bucket> multipart_upload</Bucket>", function()
    local t = assert(cxml.parse(read(FIX .. "oss/initiate-multipart-upload.xml")))
    assert.equal(" multipart_upload", t[1].text)
  end)

  it("ignores text between child elements (botocore's U+FFFC sample)", function()
    local t = assert(cxml.parse(read(FIX .. "s3/access-control-policy-botocore-odd-chars.xml")))
    local grant = t[2][1]
    assert.equal("Grant", grant.name)
    assert.is_nil(grant.text)
    assert.equal("CanonicalUser", grant[1].attr.type)
  end)

  describe("returns nil, err for malformed input", function()
    local bad = {
      "",
      "   ",
      "not xml",
      "<a>",
      "<a></b>",
      "<a><b></a></b>",
      "<a/><b/>",
      "<a>&undefined;</a>",
      "<a>&#0;</a>",
      "<a b='1' b='2'/>",
      "<a>\255\254</a>",
      '<?xml version="1.0" encoding="UTF-8"?>',
      "<a>\0</a>",
      "<a>" .. ("x"):rep(100) .. "<",
    }
    for i, s in ipairs(bad) do
      it("case " .. i, function()
        local t, err = cxml.parse(s)
        assert.is_nil(t)
        assert.truthy(parse_error(err, true):match("^xml: "))
        local r, err2 = xml.parse(s)
        assert.is_nil(r)
        parse_error(err2, true)
      end)
    end
  end)

  it("never crashes on truncated or corrupted documents", function()
    local doc = read(FIX .. "oss/list-object-versions-encoding-url.xml")
    math.randomseed(12345)
    for cut = 0, #doc, 7 do
      local t, err = cxml.parse(doc:sub(1, cut))
      assert.is_true(is_result(t, err))
    end
    for _ = 1, 300 do
      local bytes = {}
      for j = 1, #doc do bytes[j] = doc:sub(j, j) end
      for _ = 1, 5 do
        local p = math.random(#doc)
        bytes[p] = string.char(math.random(0, 255))
      end
      local t, err = cxml.parse(table.concat(bytes))
      assert.is_true(is_result(t, err))
    end
  end)

  describe("limits", function()
    it("refuses documents over max_size", function()
      local doc = "<a>" .. ("x"):rep(1000) .. "</a>"
      assert.is_table(cxml.parse(doc, { max_size = #doc }))
      local t, err = cxml.parse(doc, { max_size = #doc - 1 })
      assert.is_nil(t)
      assert.truthy(parse_error(err, false):find("limit", 1, true))
      assert.is_number(cxml.default_max_size)
    end)

    it("refuses a document over the default size limit without parsing it", function()
      local big = ("<a>" .. ("x"):rep(1024 * 1024) .. "</a>"):rep(math.floor(cxml.default_max_size / (1024 * 1024)) + 1)
      local t, err = xml.parse(big)
      assert.is_nil(t)
      assert.truthy(parse_error(err, false):find("limit", 1, true))
    end)

    it("refuses nesting deeper than max_depth", function()
      local function nest(n) return ("<a>"):rep(n) .. ("</a>"):rep(n) end
      assert.is_table(cxml.parse(nest(cxml.default_max_depth)))
      local t, err = cxml.parse(nest(cxml.default_max_depth + 1))
      assert.is_nil(t)
      assert.truthy(parse_error(err, false):find("deeper", 1, true))
      assert.is_table(cxml.parse(nest(10), { max_depth = 10 }))
      assert.is_nil(cxml.parse(nest(11), { max_depth = 10 }))
    end)

    it("survives pathological nesting (100000 levels)", function()
      local n = 100000
      local t, err = xml.parse(("<a>"):rep(n) .. ("</a>"):rep(n))
      assert.is_nil(t)
      parse_error(err)
    end)
  end)

  describe("hostile documents", function()
    it("does not resolve external entities (XXE)", function()
      local doc = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
      local t, err = cxml.parse(doc)
      assert.is_nil(t)
      assert.truthy(parse_error(err, false):find("DOCTYPE", 1, true))
    end)

    it("does not load an external DTD or touch the network", function()
      local t, err = cxml.parse('<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r/>')
      assert.is_nil(t)
      assert.truthy(parse_error(err, false):find("DOCTYPE", 1, true))
      t = cxml.parse('<!DOCTYPE r PUBLIC "-//x//y" "file:///etc/passwd"><r/>')
      assert.is_nil(t)
    end)

    it("does not expand entities (billion laughs)", function()
      local lines = { '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' }
      for i = 1, 9 do
        local prev = i == 1 and "lol" or "lol" .. (i - 1)
        lines[#lines + 1] = '<!ENTITY lol' .. i .. ' "' .. ("&" .. prev .. ";"):rep(10) .. '">'
      end
      lines[#lines + 1] = "]><lolz>&lol9;</lolz>"
      local t0 = os.clock()
      local t, err = cxml.parse(table.concat(lines))
      assert.is_nil(t)
      parse_error(err)
      assert.is_true(os.clock() - t0 < 1)
    end)

    it("refuses a DOCTYPE even without entities", function()
      assert.is_nil(cxml.parse("<!DOCTYPE r><r>x</r>"))
    end)
  end)

  describe("control characters (XML 1.0 has no place for them)", function()
    it("reads S3's &#xN; references as the control bytes", function()
      local t = assert(cxml.parse("<K>a&#x1;b&#31;c&#x0007;d&#xD;&#9;</K>"))
      assert.equal("a\1b\31c\7d\r\t", t.text)
    end)

    it("reads raw control bytes some servers send", function()
      local t = assert(cxml.parse("<R><K>x\1y\27z</K></R>"))
      assert.equal("x\1y\27z", t[1].text)
    end)

    it("also maps references in attribute values", function()
      local t = assert(cxml.parse('<R a="&#x2;"><K/></R>'))
      assert.equal("\2", t.attr.a)
    end)

    it("leaves &#x1; in CDATA and comments literal", function()
      local t = assert(cxml.parse("<R><K><![CDATA[&#x1;]]></K><!-- &#x2; --><L>&#x3;</L></R>"))
      assert.equal("&#x1;", t[1].text)
      assert.equal("\3", t[2].text)
    end)

    it("keeps private-use characters intact, and parses strictly when they are present", function()
      local pua = "\244\143\188\129" -- U+10FF01, the marker for 0x01
      local t = assert(cxml.parse("<K>" .. pua .. "</K>"))
      assert.equal(pua, t.text)
      local t2, err = cxml.parse("<K>" .. pua .. "&#x1;</K>")
      assert.is_nil(t2)
      parse_error(err)
    end)

    it("leaves UTF-16 documents to libxml2", function()
      local le = { "\255\254" }
      for c in ("<a>x\1y</a>"):gmatch(".") do le[#le + 1] = c .. "\0" end
      -- U+0001 is as illegal in UTF-16 XML as anywhere: refused, not mangled
      assert.is_nil(cxml.parse(table.concat(le)))
      le = { "\255\254" }
      for c in ("<a>xy</a>"):gmatch(".") do le[#le + 1] = c .. "\0" end
      assert.equal("xy", assert(cxml.parse(table.concat(le))).text)
    end)

    it("still refuses NUL", function()
      assert.is_nil(cxml.parse("<K>&#0;</K>"))
      assert.is_nil(cxml.parse("<K>&#x0;</K>"))
    end)
  end)
end)

describe("core.xml.escape", function()
  it("escapes markup characters and control characters", function()
    assert.equal("a&amp;b&lt;c&gt;d&quot;e&apos;f", cxml.escape("a&b<c>d\"e'f"))
    assert.equal("&#x9;&#xA;&#xD;&#x1;&#x1F;&#x7F;", cxml.escape("\t\n\r\1\31\127"))
    assert.equal("&#x85;&#x2028;", cxml.escape("\194\133\226\128\168"))
    assert.equal("caf\195\169 \240\159\146\169", cxml.escape("caf\195\169 \240\159\146\169"))
    assert.equal("", cxml.escape(""))
  end)

  it("raises on text XML cannot hold", function()
    for _, s in ipairs({ "a\0b", "\255", "\192\128", "\237\160\128", "\239\191\190", "\239\191\191", "\244\144\128\128",
      "\226\130" }) do
      assert.has_error(function() cxml.escape(s) end)
    end
  end)

  it("raises naming the argument on a non-string", function()
    local ok, err = pcall(cxml.escape, 1)
    assert.is_false(ok)
    assert.matches("^objstore%.core%.xml%.escape: argument #1 %(s%): string expected, got number", err)
    ok, err = pcall(cxml.escape, "a\0b")
    assert.is_false(ok)
    assert.matches("^objstore%.core%.xml%.escape: argument #1 %(s%): not representable in XML 1%.0 at byte 2", err)
  end)
end)

describe("objstore.xml.parse", function()
  it("returns snake_case fields and the root name", function()
    local r, root = xml.parse(read(FIX .. "s3/list-objects-v2-prefix-delimiter.xml"))
    assert.equal("ListBucketResult", root)
    assert.equal("example-bucket", r.name)
    assert.equal("photos/2006/", r.prefix)
    assert.equal(3, r.key_count)
    assert.equal(1000, r.max_keys)
    assert.equal("/", r.delimiter)
    assert.is_false(r.is_truncated)
    assert.equal(1, #r.contents)
    assert.equal("photos/2006/", r.contents[1].key)
    assert.equal('"d41d8cd98f00b204e9800998ecf8427e"', r.contents[1].etag)
    assert.equal(0, r.contents[1].size)
    assert.equal("STANDARD", r.contents[1].storage_class)
    assert.same({ { prefix = "photos/2006/February/" }, { prefix = "photos/2006/January/" } }, r.common_prefixes)
  end)

  it("matches with and without the S3 namespace", function()
    local a = xml.parse('<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>'
      .. "<Contents><Key>k</Key></Contents></ListBucketResult>")
    local b = xml.parse("<ListBucketResult><Name>b</Name><Contents><Key>k</Key></Contents></ListBucketResult>")
    assert.same(a, b)
    assert.equal("k", a.contents[1].key)
  end)

  it("always gives arrays for list-typed elements, empty when absent", function()
    local r = xml.parse("<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated></ListBucketResult>")
    assert.same({}, r.contents)
    assert.same({}, r.common_prefixes)
    r = xml.parse("<ListVersionsResult><Version><Key>a</Key></Version></ListVersionsResult>")
    assert.equal("a", r.version[1].key)
    assert.same({}, r.delete_marker)
    r = xml.parse("<ListPartsResult><Part><PartNumber>7</PartNumber></Part></ListPartsResult>")
    assert.equal(7, r.part[1].part_number)
    r = xml.parse("<ListMultipartUploadsResult><Upload><Key>u</Key></Upload></ListMultipartUploadsResult>")
    assert.equal("u", r.upload[1].key)
    r = xml.parse("<ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>")
    assert.same({ bucket = {} }, r.buckets)
    r = xml.parse("<ListAllMyBucketsResult><Owner><ID>x</ID></Owner></ListAllMyBucketsResult>")
    assert.same({ bucket = {} }, r.buckets)
  end)

  it("decides list-typing by parent: Bucket, DeleteMarker, Error", function()
    local r = xml.parse(read(FIX .. "s3/initiate-multipart-upload.xml"))
    assert.equal("example-bucket", r.bucket)
    r = xml.parse(read(FIX .. "s3/list-all-my-buckets.xml"))
    assert.equal(36, #r.buckets.bucket)
    assert.equal("botostats", r.buckets.bucket[1].name)
    r = xml.parse(read(FIX .. "oss/delete-result-encoding-url-control-chars.xml"))
    assert.is_true(r.deleted[1].delete_marker)
    assert.same({}, r.error)
    r = xml.parse(read(FIX .. "oss/list-object-versions-encoding-url.xml"))
    assert.equal(2, #r.delete_marker)
    assert.equal("", r.version[2].version_id)
    r = xml.parse(read(FIX .. "s3/delete-result-deleted-and-error.xml"))
    assert.same({ { key = "sample2.txt", code = "AccessDenied", message = "Access Denied" } }, r.error)
  end)

  it("turns unknown repeated siblings into arrays", function()
    local r = xml.parse("<R><X>1</X><Y>a</Y><X>2</X><X>3</X></R>")
    assert.same({ "1", "2", "3" }, r.x)
    assert.equal("a", r.y)
  end)

  it("merges attributes of non-leaf elements (S3 ACL grantee type)", function()
    local r = xml.parse(read(FIX .. "s3/access-control-policy.xml"))
    local g = r.access_control_list.grant
    assert.equal(5, #g)
    assert.same({ type = "CanonicalUser", id = "Owner-canonical-user-ID", display_name = "display-name" }, g[1].grantee)
    assert.equal("Group", g[4].grantee.type)
    assert.equal("http://acs.amazonaws.com/groups/global/AllUsers", g[4].grantee.uri)
    r = xml.parse(read(FIX .. "oss/access-control-policy.xml"))
    assert.same({ "public-read" }, r.access_control_list.grant)
  end)

  it("converts boto3's integer and boolean fields, keeps odd values as strings", function()
    local r = xml.parse(read(FIX .. "s3/list-parts.xml"))
    assert.equal(2, r.max_parts)
    assert.equal("1", r.part_number_marker)
    assert.equal("3", r.next_part_number_marker)
    assert.is_true(r.is_truncated)
    assert.equal(10485760, r.part[1].size)
    assert.equal(2, r.part[1].part_number)
    r = xml.parse("<ListBucketResult><MaxKeys></MaxKeys><IsTruncated>maybe</IsTruncated></ListBucketResult>")
    assert.equal("", r.max_keys)
    assert.equal("maybe", r.is_truncated)
  end)

  it("gives { text = ... } for a leaf root (GetBucketLocation)", function()
    local r, root = xml.parse('<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-1'
      .. "</LocationConstraint>")
    assert.equal("LocationConstraint", root)
    assert.same({ text = "eu-west-1" }, r)
    assert.same({ text = "" }, xml.parse("<LocationConstraint/>"))
  end)

  it("snake_cases names", function()
    assert.equal("list_bucket_result", xml.snake("ListBucketResult"))
    assert.equal("id", xml.snake("ID"))
    assert.equal("etag", xml.snake("ETag"))
    assert.equal("next_continuation_token", xml.snake("NextContinuationToken"))
    assert.equal("upload_id_marker", xml.snake("UploadIdMarker"))
    assert.equal("ec", xml.snake("EC"))
    assert.equal("uri", xml.snake("URI"))
    assert.equal("checksum_crc32c", xml.snake("ChecksumCRC32C"))
  end)

  it("raises naming the argument on misuse", function()
    for _, v in ipairs({ 1, true, {} }) do
      local ok, err = pcall(xml.parse, v)
      assert.is_false(ok)
      assert.truthy(err:find("objstore.xml.parse: argument #1 (s): must be a string", 1, true))
    end
    local ok, err = pcall(function() xml.parse(nil) end)
    assert.is_false(ok)
    assert.matches("^spec/xml_spec%.lua:%d+: objstore%.xml%.parse: argument #1 %(s%): must be a string, got nil$", err)
    ok, err = pcall(xml.parse, "<a/>", 5)
    assert.is_false(ok)
    assert.truthy(err:find("objstore.xml.parse: argument #2 (opts): must be a table or nil, got number", 1, true))
    ok, err = pcall(xml.parse_tree, 5)
    assert.is_false(ok)
    assert.truthy(err:find("objstore.xml.parse_tree: argument #1 (s)", 1, true))
    ok, err = pcall(cxml.parse, nil)
    assert.is_false(ok)
    assert.matches("^objstore%.core%.xml%.parse: argument #1 %(s%): XML document string expected, got nil", err)
    local function raises(pattern, ...)
      local ok2, e = pcall(cxml.parse, ...)
      assert.is_false(ok2)
      assert.matches(pattern, e)
    end
    local P = "^objstore%.core%.xml%.parse: argument #2 "
    raises(P .. "%(opts%.max_depth%): must be an integer from 1 to 256", "<a/>", { max_depth = 0 })
    raises(P .. "%(opts%.max_depth%): must be an integer from 1 to 256", "<a/>", { max_depth = 1000 })
    raises(P .. "%(opts%.max_size%): must be a number, got string", "<a/>", { max_size = "big" })
    raises(P .. "%(opts%.max_size%): must be an integer", "<a/>", { max_size = 1.5 })
    raises(P .. "%(opts%): table expected, got string", "<a/>", "opts")
  end)
end)

describe("objstore.xml.decode_url_fields", function()
  local doc = "<ListBucketResult><EncodingType>url</EncodingType><Prefix>a%2Fb+c</Prefix>"
    .. "<Delimiter>%2F</Delimiter><Marker>m%2B</Marker><NextMarker>n%20</NextMarker><StartAfter>s%25</StartAfter>"
    .. "<ContinuationToken>t%2F</ContinuationToken><NextContinuationToken>u+%2F</NextContinuationToken>"
    .. "<Contents><Key>k+1%2B%zz</Key></Contents><CommonPrefixes><Prefix>p%E2%82%AC%2F</Prefix></CommonPrefixes>"
    .. "</ListBucketResult>"

  it("decodes exactly the fields S3/OSS encode; '+' is a space, %2B a plus", function()
    local r = xml.decode_url_fields(assert(xml.parse(doc)))
    assert.equal("a/b c", r.prefix)
    assert.equal("/", r.delimiter)
    assert.equal("m+", r.marker)
    assert.equal("n ", r.next_marker)
    assert.equal("s%", r.start_after)
    assert.equal("k 1+%zz", r.contents[1].key)
    assert.equal("p\226\130\172/", r.common_prefixes[1].prefix)
    -- continuation tokens are opaque and sent back as they came
    assert.equal("t%2F", r.continuation_token)
    assert.equal("u+%2F", r.next_continuation_token)
  end)

  it("is a no-op the second time and without EncodingType=url", function()
    local r = xml.decode_url_fields(xml.decode_url_fields(assert(xml.parse(doc))))
    assert.equal("s%", r.start_after)
    local plain = assert(xml.parse("<ListBucketResult><Prefix>a%2F+</Prefix></ListBucketResult>"))
    assert.equal("a%2F+", xml.decode_url_fields(plain).prefix)
  end)

  it("decodes keys in DeleteResult, ListVersionsResult and multipart results", function()
    local r = xml.decode_url_fields(assert(xml.parse(read(FIX .. "oss/delete-result-encoding-url-control-chars.xml"))))
    assert.equal("go-sdk-v1" .. CONTROLS, r.deleted[1].key)
    r = xml.decode_url_fields(assert(xml.parse(read(FIX .. "oss/list-object-versions-encoding-url.xml"))))
    assert.equal("demo/LICENSE", r.delete_marker[2].key)
    assert.equal("demo/README-CN.md", r.next_key_marker)
    r = xml.decode_url_fields(assert(xml.parse("<InitiateMultipartUploadResult><Bucket>b</Bucket>"
      .. "<Key>a%2Fb</Key><EncodingType>url</EncodingType></InitiateMultipartUploadResult>")))
    assert.equal("a/b", r.key)
  end)

  it("raises naming the argument on misuse", function()
    local ok, err = pcall(xml.decode_url_fields, "x")
    assert.is_false(ok)
    assert.truthy(err:find("objstore.xml.decode_url_fields: argument #1 (result): must be a table, got string", 1,
      true))
  end)
end)

describe("objstore.xml.error", function()
  it("parses S3 and OSS <Error> bodies", function()
    assert.same({
      code = "AccessDenied",
      message = "Access Denied",
      request_id = "9C7D5181867045BB",
      host_id = "XNe9pgGHhc+EBMJajTIuknWns46Dd3psDfbWyo1pbc0dULg/tkidZSeWG5VNitPJ",
    }, xml.error(read(FIX .. "s3/error-accessdenied-hostid.xml")))
    local e = xml.error(read(FIX .. "s3/error-nosuchkey.xml"))
    assert.equal("/mybucket/myfoto.jpg", e.resource)
    e = xml.error(read(FIX .. "oss/error-signature-mismatch-ec.xml"))
    assert.equal("SignatureDoesNotMatch", e.code)
    assert.equal("0002-00000040", e.ec)
    assert.equal("RizTbeKC/QlwxINq8xEdUPowc84=", e.signature_provided)
  end)

  it("returns nil, err for other roots and malformed bodies", function()
    local e, err = xml.error(read(FIX .. "s3/list-parts.xml"))
    assert.is_nil(e)
    assert.truthy(parse_error(err, false):find("ListPartsResult", 1, true))
    e, err = xml.error("<Error><Code>x</Code>")
    assert.is_nil(e)
    parse_error(err, true)
    e, err = xml.error("")
    assert.is_nil(e)
    parse_error(err, true)
  end)

  it("raises naming the argument on misuse", function()
    local ok, err = pcall(xml.error, nil)
    assert.is_false(ok)
    assert.truthy(err:find("objstore.xml.error: argument #1 (s): must be a string, got nil", 1, true))
  end)
end)

describe("objstore.xml.build", function()
  it("writes a declaration, the namespace and sorted children", function()
    local s = xml.build("CreateBucketConfiguration", { LocationConstraint = "eu-west-1" },
      "http://s3.amazonaws.com/doc/2006-03-01/")
    assert.equal('<?xml version="1.0" encoding="UTF-8"?><CreateBucketConfiguration '
      .. 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>eu-west-1</LocationConstraint>'
      .. "</CreateBucketConfiguration>", s)
  end)

  it("repeats array values, writes numbers and booleans, keeps pair order", function()
    local s = xml.build("CompleteMultipartUpload", {
      Part = { { { "PartNumber", 1 }, { "ETag", '"a"' } }, { { "PartNumber", 2.0 }, { "ETag", '"b"' } } },
    })
    assert.equal('<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload>'
      .. "<Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>"
      .. "<Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag></Part></CompleteMultipartUpload>", s)
    s = xml.build("Delete", { Quiet = true, Object = { { Key = "a" } } })
    assert.equal('<?xml version="1.0" encoding="UTF-8"?><Delete><Object><Key>a</Key></Object>'
      .. "<Quiet>true</Quiet></Delete>", s)
    s = xml.build("X", { Big = 5 * 1024 ^ 4, Neg = -3 })
    assert.truthy(s:find("<Big>5497558138880</Big>", 1, true))
    assert.truthy(s:find("<Neg>-3</Neg>", 1, true))
    if math.type then
      assert.truthy(xml.build("X", { I = math.maxinteger }):find("<I>9223372036854775807</I>", 1, true))
    end
    assert.truthy(xml.build("X", { F = 1.5 }):find("<F>1.5</F>", 1, true))
  end)

  it("writes attributes from @keys", function()
    local s = xml.build("AccessControlPolicy", {
      AccessControlList = {
        Grant = { {
          Grantee = {
            ["@xmlns:xsi"] = "http://www.w3.org/2001/XMLSchema-instance",
            ["@xsi:type"] = "Group",
            URI = "http://acs.amazonaws.com/groups/global/AllUsers",
          },
          Permission = "READ",
        } },
      },
    })
    local r = assert(xml.parse(s))
    assert.same({ type = "Group", uri = "http://acs.amazonaws.com/groups/global/AllUsers" },
      r.access_control_list.grant[1].grantee)
  end)

  it("round-trips keys with markup, quotes, unicode, spaces and control characters", function()
    local keys = {
      "plain.txt",
      "a&b<c>d\"e'f",
      "]]>&amp;&lt;",
      "  leading and trailing  ",
      "caf\195\169/\230\151\165\230\156\172/\240\159\152\128",
      "tab\tnewline\ncr\rcrlf\r\n",
      "ctl" .. CONTROLS .. "end",
      "\127\194\133\226\128\168",
      "%2F+plus",
      "\244\143\191\189", -- U+10FFFD, a legal private-use character
    }
    local objects = {}
    for i, k in ipairs(keys) do objects[i] = { Key = k, VersionId = "v" .. i } end
    local body = xml.build("Delete", { Quiet = false, Object = objects })
    local r = assert(xml.parse(body))
    assert.equal(#keys, #r.object)
    for i, k in ipairs(keys) do
      assert.equal(k, r.object[i].key)
      assert.equal("v" .. i, r.object[i].version_id)
    end
    assert.is_false(r.quiet)
    -- the generic tree and attribute values round-trip too
    local s = xml.build("R", { ["@k"] = keys[2] .. CONTROLS, V = keys[7] })
    local t = assert(cxml.parse(s))
    assert.equal(keys[2] .. CONTROLS, t.attr.k)
    assert.equal(keys[7], t[1].text)
  end)

  it("raises on misuse, naming the argument or the path", function()
    local function err_of(...)
      local ok, e = pcall(xml.build, ...)
      assert.is_false(ok)
      return e
    end
    assert.truthy(err_of(nil, {}):find("objstore.xml.build: argument #1 (root_name): must be a string", 1, true))
    assert.truthy(err_of("R", function() end):find("objstore.xml.build: argument #2 (tree): must be a table", 1, true))
    assert.truthy(err_of("R", {}, 5):find("objstore.xml.build: argument #3 (ns): must be a string or nil", 1, true))
    assert.truthy(err_of("1R", {}):find("objstore.xml.build: argument #1 (root_name): invalid element", 1, true))
    assert.truthy(err_of("R", { ["bad name"] = "x" }):find("argument #2 (tree.bad name): invalid element", 1, true))
    assert.truthy(err_of("R", { K = "a\0b" }):find("argument #2 (tree.K): value is not representable", 1, true))
    assert.truthy(err_of("R", { O = { { K = 1 }, { K = print } } }):find("argument #2 (tree.O[2].K): value of type",
      1, true))
    assert.matches("^spec/xml_spec%.lua:%d+: objstore%.xml%.build: argument #2 %(tree%.K%)",
      select(2, pcall(function() xml.build("R", { K = print }) end)))
    assert.truthy(err_of("R", { K = "\255" }):find("not representable", 1, true))
    assert.truthy(err_of("R", { K = 0 / 0 }):find("not finite", 1, true))
    assert.truthy(err_of("R", { K = print }):find("function", 1, true))
    assert.truthy(err_of("R", { [1] = "x" }):find("pairs", 1, true))
    assert.truthy(err_of("R", { { "A", 1 }, B = 2 }):find("named field B", 1, true))
    local cyc = {}
    cyc.Self = cyc
    assert.truthy(err_of("R", cyc):find("deeper", 1, true))
  end)
end)

describe("vector samples", function()
  it("all parse with libxml2 and xml.parse", function()
    local index = read(FIX .. "index.json")
    local n = 0
    for file, root in index:gmatch('"file":%s*"([^"]+)",%s*"root":%s*"([^"]+)"') do
      local r, got = xml.parse(read(FIX .. file))
      assert.is_table(r)
      assert.equal(root, got)
      n = n + 1
    end
    assert.is_true(n >= 33)
  end)
end)
