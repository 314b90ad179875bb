-- Hostile-client cases against objstore.front.sigv4, aws_chunked and
-- s3_error (review 21). Requests are signed through the verifier's own
-- StringToSign (an oracle: a first try with a wrong signature), so each
-- case checks what is accepted or refused, not the signer.
local sigv4 = require "objstore.front.sigv4"
local aws_chunked = require "objstore.front.aws_chunked"
local s3_error = require "objstore.front.s3_error"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local core = require "objstore.core"

local hash = core.hash
local AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
local T = 1369353600 -- 20130524T000000Z
local DATE = "20130524T000000Z"
local ZERO = string.rep("0", 64)
local EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
local OPTS = { region = "us-east-1" }

local function lookup(ak)
  if ak == AK then return SK end
end

local function hmac_sig(sts, date8)
  local k = hash.hmac("sha256", "AWS4" .. SK, date8 or DATE:sub(1, 8))
  k = hash.hmac("sha256", k, "us-east-1")
  k = hash.hmac("sha256", k, "s3")
  k = hash.hmac("sha256", k, "aws4_request")
  return hash.tohex(hash.hmac("sha256", k, sts))
end

local function authz(signed, sig, cred)
  return "AWS4-HMAC-SHA256 Credential=" .. (cred or (AK .. "/20130524/us-east-1/s3/aws4_request"))
    .. ", SignedHeaders=" .. signed .. ", Signature=" .. (sig or ZERO)
end

--- Asserts a refusal with `code` and that the secret is nowhere in it.
local function refused(code, res, err)
  assert.is_nil(res)
  assert.is_true(errors.is(err), "not an objstore error: " .. tostring(err))
  assert.equals(code, err.code, tostring(err))
  local xml = s3_error.render(err)
  for k, v in pairs(err) do assert.is_nil(tostring(v):find(SK, 1, true), "secret in err." .. tostring(k)) end
  assert.is_nil(tostring(err):find(SK, 1, true))
  assert.is_nil(xml:find(SK, 1, true))
  return err
end

--- A header-mode request: headers (array of pairs, Authorization last and
-- filled in), signed with `signed` (default: every header given).
local function header_req(t)
  local h = {}
  for i, p in ipairs(t.headers or {}) do h[i] = { p[1], p[2] } end
  local names = {}
  for _, p in ipairs(h) do names[#names + 1] = p[1]:lower() end
  table.sort(names)
  local signed = t.signed or table.concat(names, ";")
  h[#h + 1] = { "Authorization", authz(signed, nil, t.cred) }
  return { method = t.method or "GET", path = t.path or "/b/k", query = t.query or "", headers = h,
    now = t.now or T }
end

local function base_headers(extra)
  local h = { { "Host", "b.example" }, { "x-amz-date", DATE }, { "x-amz-content-sha256", EMPTY } }
  for _, p in ipairs(extra or {}) do h[#h + 1] = p end
  return h
end

--- Signs `req` (its Authorization or X-Amz-Signature) through the oracle;
-- returns req and the canonical request.
local function sign(req, opts)
  local _, err = sigv4.verify(req, lookup, opts or OPTS)
  assert(err and err.code == "SignatureDoesNotMatch", "oracle: " .. tostring(err))
  local sig = hmac_sig(err.string_to_sign)
  if req.query:find("X-Amz-Signature=", 1, true) then
    req.query = req.query:gsub("X%-Amz%-Signature=%x*", "X-Amz-Signature=" .. sig)
  else
    local a = req.headers[#req.headers]
    a[2] = a[2]:gsub("Signature=%x*$", "Signature=" .. sig)
  end
  return req, err.canonical_request
end

local function presign_query(t)
  t = t or {}
  local parts = {
    "X-Amz-Algorithm=AWS4-HMAC-SHA256",
    "X-Amz-Credential=" .. (t.cred or (AK .. "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request")),
    "X-Amz-Date=" .. (t.date or DATE),
    "X-Amz-Expires=" .. (t.expires or "86400"),
    "X-Amz-SignedHeaders=" .. (t.signed or "host"),
  }
  if t.extra then parts[#parts + 1] = t.extra end
  parts[#parts + 1] = "X-Amz-Signature=" .. ZERO
  return table.concat(parts, "&")
end

local function presigned_req(t)
  t = t or {}
  return { method = "GET", path = t.path or "/b/k", query = presign_query(t),
    headers = t.headers or { { "Host", "b.example" } }, now = t.now or T }
end

describe("front.sigv4 against hostile clients", function()
  it("accepts the honest requests the cases start from", function()
    local req = sign(header_req{ headers = base_headers() })
    assert.is_table((sigv4.verify(req, lookup, OPTS)))
    local p = sign(presigned_req())
    assert.is_table((sigv4.verify(p, lookup, OPTS)))
  end)

  it("refuses SignedHeaders without host", function()
    local req = header_req{ headers = base_headers(), signed = "x-amz-content-sha256;x-amz-date" }
    refused("AccessDenied", sigv4.verify(req, lookup, OPTS))
    refused("AccessDenied", sigv4.verify(presigned_req{ signed = "x-amz-date" }, lookup, OPTS))
  end)

  it("refuses duplicate Authorization components", function()
    local req = sign(header_req{ headers = base_headers() })
    local a = req.headers[#req.headers]
    local good = a[2]
    a[2] = good .. ", Signature=" .. ZERO
    refused("AuthorizationHeaderMalformed", sigv4.verify(req, lookup, OPTS))
    a[2] = good .. ", Credential=OTHER/20130524/us-east-1/s3/aws4_request"
    refused("AuthorizationHeaderMalformed", sigv4.verify(req, lookup, OPTS))
    -- two Authorization headers are joined, and then malformed
    a[2] = good
    req.headers[#req.headers + 1] = { "Authorization", good }
    refused("AuthorizationHeaderMalformed", sigv4.verify(req, lookup, OPTS))
  end)

  it("refuses duplicate presign query parameters, however encoded", function()
    local p = sign(presigned_req())
    for _, extra in ipairs{ "&X-Amz-Signature=" .. ZERO, "&X%2DAmz-Signature=" .. ZERO, "&X-Amz-Date=" .. DATE,
      "&X-Amz-Expires=1", "&X-Amz-Credential=x", "&X-Amz-SignedHeaders=host", "&X-Amz-Algorithm=x" } do
      local q = { method = p.method, path = p.path, query = p.query .. extra, headers = p.headers, now = T }
      refused("AuthorizationQueryParametersError", sigv4.verify(q, lookup, OPTS))
    end
  end)

  it("refuses both mechanisms at once, and an unsigned x-amz-date header on a presigned URL", function()
    local p = sign(presigned_req())
    local q = { method = "GET", path = p.path, query = p.query,
      headers = { { "Host", "b.example" }, { "Authorization", authz("host") } }, now = T }
    refused("InvalidArgument", sigv4.verify(q, lookup, OPTS))
    q.headers = { { "Host", "b.example" }, { "X-Amz-Date", DATE } }
    local err = refused("AccessDenied", sigv4.verify(q, lookup, OPTS))
    assert.equals("x-amz-date", err.headers_not_signed)
  end)

  it("refuses X-Amz-Expires that is not 1..604800 written plainly", function()
    -- S3 documents 1 as the shortest lifetime: 0 is refused too
    for _, e in ipairs{ "0", "00", "-1", "1.5", "1e3", "0x10", "604801", "99999999999999999999", "", "+5", " 5",
      "inf", "nan" } do
      refused("AuthorizationQueryParametersError", sigv4.verify(presigned_req{ expires = e }, lookup, OPTS))
    end
    -- 604800 is the longest lifetime: valid until its last second
    local p = sign(presigned_req{ expires = "604800", now = T + 604800 })
    assert.is_table((sigv4.verify(p, lookup, OPTS)))
    p.now = T + 604801
    refused("AccessDenied", sigv4.verify(p, lookup, OPTS))
  end)

  it("refuses malformed or out-of-range X-Amz-Date", function()
    for _, d in ipairs{ "00000101T000000Z", "20131324T000000Z", "20130532T000000Z", "20130229T000000Z",
      "20130524T240000Z", "20130524T236000Z", "20130524T000060Z", "20130524T000000", "2013-05-24T00:00:00Z",
      "20130524t000000z", "99991231T235959Z", "20130524T000000Z " } do
      refused("AuthorizationQueryParametersError", sigv4.verify(presigned_req{ date = d }, lookup, OPTS))
      local code = d == "99991231T235959Z" and "RequestTimeTooSkewed" or "AccessDenied"
      local h = base_headers()
      h[2][2] = d
      refused(code, sigv4.verify(header_req{ headers = h }, lookup, OPTS))
    end
  end)

  it("holds X-Amz-Content-Sha256 in a presigned URL to the header's rule", function()
    for _, v in ipairs{ "garbage", string.rep("a", 63), string.rep("g", 64), "unsigned-payload" } do
      refused("InvalidArgument", sigv4.verify(presigned_req{ extra = "X-Amz-Content-Sha256=" .. v }, lookup, OPTS))
    end
    local p = sign(presigned_req{ extra = "X-Amz-Content-Sha256=" .. EMPTY })
    assert.equals(EMPTY, assert(sigv4.verify(p, lookup, OPTS)).payload)
  end)

  it("refuses a credential scope date other than the request's", function()
    local req = header_req{ headers = base_headers(), cred = AK .. "/20130525/us-east-1/s3/aws4_request" }
    refused("AuthorizationHeaderMalformed", sigv4.verify(req, lookup, OPTS))
    local p = presigned_req{ cred = AK .. "%2F20130523%2Fus-east-1%2Fs3%2Faws4_request" }
    refused("AuthorizationQueryParametersError", sigv4.verify(p, lookup, OPTS))
  end)

  it("refuses x-amz-* headers sent but not signed", function()
    local req = header_req{ headers = base_headers(), signed = "host;x-amz-date" }
    local err = refused("AccessDenied", sigv4.verify(req, lookup, OPTS))
    assert.equals("x-amz-content-sha256", err.headers_not_signed)
    -- an x-amz-* header added after signing
    local ok = sign(header_req{ headers = base_headers() })
    table.insert(ok.headers, 1, { "X-Amz-Meta-Evil", "1" })
    refused("AccessDenied", sigv4.verify(ok, lookup, OPTS))
  end)

  it("binds the signature to every signed header's value, present or not", function()
    local req = sign(header_req{ headers = base_headers(), signed = "host;x-amz-content-sha256;x-amz-date;x-foo" })
    -- signed as absent; adding it afterwards breaks the signature
    table.insert(req.headers, 1, { "X-Foo", "1" })
    refused("SignatureDoesNotMatch", sigv4.verify(req, lookup, OPTS))
  end)

  it("treats upper-case SignedHeaders names like their lower-case ones, and refuses empty names", function()
    local req = header_req{ headers = base_headers(), signed = "host;;x-amz-date;x-amz-content-sha256" }
    refused("AuthorizationHeaderMalformed", sigv4.verify(req, lookup, OPTS))
    req = header_req{ headers = base_headers(), signed = "host;x-amz-date;x-amz-content-sha256;" }
    refused("AuthorizationHeaderMalformed", sigv4.verify(req, lookup, OPTS))
    req = header_req{ headers = base_headers(), signed = "host;x-amz-date;x-amz-content-sha256;a b" }
    refused("AuthorizationHeaderMalformed", sigv4.verify(req, lookup, OPTS))
  end)

  it("signs a header sent twice as its values joined, in order", function()
    local req, cr = sign(header_req{ headers = base_headers{ { "X-Amz-Meta-A", "1" }, { "x-amz-meta-a", "2" } } })
    assert.truthy(cr:find("\nx-amz-meta-a:1,2\n", 1, true))
    assert.is_table((sigv4.verify(req, lookup, OPTS)))
    -- swapping the two values is another request
    req.headers[4][2], req.headers[5][2] = "2", "1"
    refused("SignatureDoesNotMatch", sigv4.verify(req, lookup, OPTS))
  end)

  it("answers (never raises) on header values with CR, LF, tab or NUL", function()
    for _, v in ipairs{ "a\0b", "a\rb", "a\nb", "a\tb", "a\r\nx-amz-meta-b: c" } do
      local req = header_req{ headers = base_headers{ { "x-amz-meta-a", v } } }
      local ok, res, err = pcall(sigv4.verify, req, lookup, OPTS)
      assert.is_true(ok, "raised on " .. ("%q"):format(v) .. ": " .. tostring(res))
      assert.is_nil(res)
      assert.truthy(err.code)
    end
  end)

  it("answers (never raises) on paths, queries and headers past the signer's limits", function()
    local big = string.rep("a", 64 * 1024 + 1)
    local extra = {}
    for i = 1, 300 do
      extra[i] = { "x-amz-meta-" .. i, "v" }
    end
    for _, c in ipairs{
      { "InvalidRequest", header_req{ headers = base_headers(), path = "/b/" .. big } },
      { "InvalidRequest", header_req{ headers = base_headers(), query = big } },
      { "InvalidRequest", presigned_req{ path = "/b/" .. big } },
      { "RequestHeaderSectionTooLarge", header_req{ headers = base_headers{ { "x-amz-meta-a", big } } } },
      { "RequestHeaderSectionTooLarge", header_req{ headers = base_headers(extra) } },
    } do
      local ok, res, err = pcall(sigv4.verify, c[2], lookup, OPTS)
      assert.is_true(ok, tostring(res))
      refused(c[1], res, err)
      assert.equals(400, err.status)
    end
  end)

  it("answers S3's errors (no SigningError) for a region, service or access key of any length", function()
    local big = string.rep("r", 100)
    local any = function() return SK end
    for _, c in ipairs{
      { "AuthorizationHeaderMalformed", AK .. "/20130524/" .. big .. "/s3/aws4_request", {} },
      { "AuthorizationHeaderMalformed", AK .. "/20130524/us-east-1/" .. big .. "/aws4_request", {} },
      { "SignatureDoesNotMatch", string.rep("A", 100000) .. "/20130524/us-east-1/s3/aws4_request", {} },
    } do
      local req = header_req{ headers = base_headers(), cred = c[2] }
      local ok, res, err = pcall(sigv4.verify, req, any, c[3])
      assert.is_true(ok, tostring(res))
      refused(c[1], res, err)
      assert.is_number(err.status)
    end
  end)

  it("refuses empty, short, long and non-hex signatures", function()
    local good = sign(header_req{ headers = base_headers() })
    local a = good.headers[#good.headers]
    local sig = a[2]:match("Signature=(%x+)$")
    for _, bad in ipairs{ "", sig:sub(1, 63), sig .. "0", sig:sub(1, 62) .. "zz", sig:sub(1, 32),
    } do
      a[2] = authz("host;x-amz-content-sha256;x-amz-date", bad)
      local res, err = sigv4.verify(good, lookup, OPTS)
      assert.is_nil(res, ("%q"):format(bad))
      assert.truthy(err.code == "SignatureDoesNotMatch" or err.code == "AuthorizationHeaderMalformed")
    end
  end)

  it("compares in constant time structurally: no early exit", function()
    local eq = sigv4.constant_time_equal
    assert.is_true(eq(string.rep("a", 64), string.rep("a", 64)))
    assert.is_false(eq("a" .. string.rep("b", 63), "b" .. string.rep("b", 63)))
    assert.is_false(eq(string.rep("b", 63) .. "a", string.rep("b", 64)))
    assert.is_false(eq("ab", "abc"))
    -- a difference of +1 and -1 must not cancel out
    assert.is_false(eq("ac", "bb"))
  end)

  it("refuses access keys it does not know, whatever bytes they hold", function()
    for _, ak in ipairs{ "AK%2FX", "AK%00X", "AK%0AX", "%C3%A9", "%FF" } do
      local p = presigned_req{ cred = ak .. "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" }
      local ok, res, err = pcall(sigv4.verify, p, lookup, OPTS)
      assert.is_true(ok, tostring(res))
      assert.is_nil(res)
      assert.truthy(err.code == "InvalidAccessKeyId" or err.code == "AuthorizationQueryParametersError", err.code)
    end
  end)

  it("answers (never raises) when a lookup that accepts anything meets control bytes", function()
    local any = function() return SK end
    for _, extra in ipairs{ "X-Amz-Security-Token=tok%0Aen", "X-Amz-Security-Token=tok%00en",
      "X-Amz-Security-Token=tok%0Den" } do
      local p = presigned_req{ extra = extra }
      local ok, res, err = pcall(sigv4.verify, p, any, OPTS)
      assert.is_true(ok, "raised: " .. tostring(res))
      refused("InvalidToken", res, err)
    end
    local p = presigned_req{ cred = "AK%0AX%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" }
    local ok, res, err = pcall(sigv4.verify, p, any, OPTS)
    assert.is_true(ok, "raised: " .. tostring(res))
    refused("InvalidAccessKeyId", res, err)
  end)

  it("turns an error raised by lookup into InternalError without its message", function()
    local req = header_req{ headers = base_headers() }
    local ok, res, err = pcall(sigv4.verify, req, function() error("db down: password=" .. SK) end, OPTS)
    assert.is_true(ok, tostring(res))
    refused("InternalError", res, err)
    assert.equals(500, err.status)
  end)
end)

--- A verified streaming upload: its auth and a body builder.
local function streaming(payload, extra)
  local h = base_headers(extra)
  h[3][2] = payload
  local req = sign(header_req{ method = "PUT", headers = h })
  local auth = assert(sigv4.verify(req, lookup, OPTS))
  return auth
end

--- Signed chunks of `datas` (the final empty one added), optional trailer lines.
local function body(auth, datas, trailers, opts)
  opts = opts or {}
  local prev, parts = auth.seed_signature, {}
  for _, d in ipairs(datas) do
    local sig = auth.chunk_signer:chunk(prev, checksum.sha256_hex(d))
    prev = sig
    parts[#parts + 1] = (opts.size and opts.size(#d) or string.format("%x", #d)) .. ";chunk-signature=" .. sig
      .. "\r\n" .. d .. (#d > 0 and "\r\n" or "")
  end
  if trailers then
    local lines = {}
    for i, t in ipairs(trailers) do lines[i] = t[1] .. ":" .. t[2] .. "\n" end
    for _, t in ipairs(trailers) do parts[#parts + 1] = t[1] .. ":" .. t[2] .. "\r\n" end
    local tsig = auth.chunk_signer:trailer(prev, checksum.sha256_hex(table.concat(lines)))
    parts[#parts + 1] = "x-amz-trailer-signature:" .. tsig .. "\r\n"
  end
  parts[#parts + 1] = "\r\n"
  return table.concat(parts)
end

local function decode(auth, b, step, opts)
  local dec = aws_chunked.new(auth, opts or { min_chunk_size = 0 })
  local out = {}
  step = step or #b
  for i = 1, #b, step do
    local d, err = dec:feed(b:sub(i, i + step - 1))
    if not d then return nil, err end
    out[#out + 1] = d
  end
  local res, err = dec:finish()
  if not res then return nil, err end
  return table.concat(out), res
end

local SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
local SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"

describe("front.sigv4 canonicalisation of hostile paths and queries", function()
  -- The canonical URI and query the verifier signs (S3's rules: path not
  -- normalised, each byte encoded once, escapes upper-cased; query decoded,
  -- re-encoded, sorted by name then value; a '+' is a literal plus).
  local CASES = {
    { "/b/a%2Fb", "", "/b/a%2Fb", "" }, { "/b/a%2fb", "", "/b/a%2Fb", "" }, { "/b/%7Ek", "", "/b/~k", "" },
    { "/b/../k//x/.", "", "/b/../k//x/.", "" }, { "/b/%G1", "", "/b/%25G1", "" }, { "/b/%", "", "/b/%25", "" },
    { "/b/%FF%fe", "", "/b/%FF%FE", "" }, { "/b/k+x", "", "/b/k%2Bx", "" }, { "", "", "/", "" },
    { "/b/k", "a=b+c", "/b/k", "a=b%2Bc" }, { "/b/k", "a=b%20c", "/b/k", "a=b%20c" },
    { "/b/k", "acl", "/b/k", "acl=" }, { "/b/k", "acl=", "/b/k", "acl=" },
    { "/b/k", "a=%7e&a=%41", "/b/k", "a=A&a=~" }, { "/b/k", "b=1&a=2&a=1", "/b/k", "a=1&a=2&b=1" },
    { "/b/k", "%G1=%", "/b/k", "%25G1=%25" }, { "/b/k", "a==b", "/b/k", "a=%3Db" }, { "/b/k", "&&a=1&", "/b/k", "a=1" },
  }
  for _, c in ipairs(CASES) do
    it(("%q ? %q"):format(c[1], c[2]), function()
      local req, cr = sign(header_req{ headers = base_headers(), path = c[1], query = c[2] })
      assert.equals(c[3] .. "\n" .. c[4], cr:match("^[^\n]*\n([^\n]*\n[^\n]*)"))
      assert.is_table((sigv4.verify(req, lookup, OPTS)))
    end)
  end

  it("tells '%2F' from '/', and '+' from '%20', in what is signed", function()
    local req = sign(header_req{ headers = base_headers(), path = "/b/a/b" })
    req.path = "/b/a%2Fb"
    refused("SignatureDoesNotMatch", sigv4.verify(req, lookup, OPTS))
    req = sign(header_req{ headers = base_headers(), query = "prefix=a%20b" })
    req.query = "prefix=a+b"
    refused("SignatureDoesNotMatch", sigv4.verify(req, lookup, OPTS))
  end)
end)

describe("front.aws_chunked against hostile clients", function()
  it("decodes the honest body, whole and byte by byte", function()
    local auth = streaming(SIGNED, { { "x-amz-decoded-content-length", "8" } })
    local b = body(auth, { "abcd", "efgh", "" })
    assert.equals("abcdefgh", (decode(auth, b)))
    assert.equals("abcdefgh", (decode(auth, b, 1)))
  end)

  it("accepts leading zeros in a chunk size, refuses '+', '-', spaces and overflowing sizes", function()
    local auth = streaming(SIGNED)
    assert.equals("abcd", (decode(auth, body(auth, { "abcd", "" }, nil, { size = function(n)
      return "000" .. string.format("%x", n) end }))))
    for _, size in ipairs{ "+4", "-4", " 4", "4 ", "0x4", "4.0", "20000000000001", "ffffffffffffffffff",
      string.rep("f", 100) } do
      local b = body(auth, { "abcd", "" }, nil, { size = function(n) return n == 0 and "0" or size end })
      local res, err = decode(auth, b)
      assert.is_nil(res, size)
      assert.equals("InvalidRequest", err.code, size)
    end
  end)

  it("refuses chunk extensions other than one chunk-signature", function()
    local auth = streaming(SIGNED)
    local good = body(auth, { "abcd", "" })
    local sig = good:match("chunk%-signature=(%x+)")
    for _, line in ipairs{ "4", "4;chunk-signature=", "4;foo=bar;chunk-signature=" .. sig,
      "4;chunk-signature=" .. sig .. ";foo=bar", "4 ;chunk-signature=" .. sig, "4;Chunk-Signature=" .. sig,
      "4;chunk-signature=" .. sig .. "00", "4;chunk-signature = " .. sig } do
      local b = good:gsub("^[^\r]*", function() return line end, 1)
      local res, err = decode(auth, b)
      assert.is_nil(res, line)
      assert.equals("InvalidRequest", err.code, line)
    end
  end)

  it("refuses bare LF, CR without LF and data after the final chunk", function()
    local auth = streaming(SIGNED)
    local good = body(auth, { "abcd", "" })
    for _, b in ipairs{ good:gsub("\r\n", "\n", 1), good:gsub("\r\n", "\r", 1), good:gsub("\r\n", "\r\r\n", 1),
      good .. "x", good .. "\r\n", good .. "0;chunk-signature=" .. ZERO .. "\r\n\r\n" } do
      for _, step in ipairs{ #b, 1 } do
        local res, err = decode(auth, b, step)
        assert.is_nil(res, ("%q"):format(b))
        assert.truthy(err.code)
      end
    end
  end)

  it("keeps its buffer bounded when a size line never ends, fed a byte at a time", function()
    local auth = streaming(SIGNED)
    local dec = aws_chunked.new(auth, { max_line = 64 })
    local err
    for _ = 1, 10000 do
      local d, e = dec:feed("0")
      if not d then err = e; break end
      assert.is_true(#dec.rest <= 65)
    end
    assert.equals("InvalidRequest", err.code)
  end)

  it("checks the decoded length in both directions", function()
    for _, want in ipairs{ "7", "9", "0" } do
      local auth = streaming(SIGNED, { { "x-amz-decoded-content-length", want } })
      local res, err = decode(auth, body(auth, { "abcd", "efgh", "" }))
      assert.is_nil(res, want)
      assert.equals("IncompleteBody", err.code)
    end
  end)

  it("refuses a decoded length that is not a plain decimal", function()
    for _, want in ipairs{ "8x", "-8", "0x8", "8.0", " ", "+8" } do
      local h = base_headers{ { "x-amz-decoded-content-length", want } }
      h[3][2] = SIGNED
      local req = sign(header_req{ method = "PUT", headers = h })
      local auth, err = sigv4.verify(req, lookup, OPTS)
      assert.is_nil(auth, want)
      assert.truthy(err and err.code, want)
    end
  end)

  it("refuses (never raises on) an x-amz-trailer the decoder does not know", function()
    for _, tr in ipairs{ "x-amz-checksum-crc32, x-amz-checksum-sha1", "x-amz-checksum-md5", "content-md5" } do
      local h = base_headers{ { "x-amz-trailer", tr } }
      h[3][2] = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
      local req = sign(header_req{ method = "PUT", headers = h })
      local ok, auth, err = pcall(function()
        local a, e = sigv4.verify(req, lookup, OPTS)
        if a then aws_chunked.new(a) end
        return a, e
      end)
      assert.is_true(ok, tostring(auth))
      refused("InvalidArgument", auth, err)
    end
    -- the names it knows, in any case and spacing, pass
    local auth = streaming("STREAMING-UNSIGNED-PAYLOAD-TRAILER", { { "x-amz-trailer", " X-Amz-Checksum-SHA256 " } })
    assert.is_table(aws_chunked.new(auth))
  end)

  it("refuses the final chunk's signature when it is wrong, and a missing final chunk", function()
    local auth = streaming(SIGNED)
    local b = body(auth, { "abcd", "" })
    local tampered = b:gsub("(0;chunk%-signature=%x+)%x", "%10")
    local res, err = decode(auth, tampered)
    assert.is_nil(res)
    assert.equals("SignatureDoesNotMatch", err.code)
    res, err = decode(auth, b:match("^(.-)0;chunk"))
    assert.is_nil(res)
    assert.equals("IncompleteBody", err.code)
  end)

  it("refuses trailer lines without ':', duplicated trailers and another algorithm's checksum", function()
    local crc = checksum.new("crc32"):update("abcd"):base64digest()
    local auth = streaming(SIGNED_TRAILER, { { "x-amz-trailer", "x-amz-checksum-crc32" } })
    assert.equals("abcd", (decode(auth, body(auth, { "abcd", "" }, { { "x-amz-checksum-crc32", crc } }))))
    local cases = {
      { { "x-amz-checksum-crc32", "AAAAAA==" }, { "x-amz-checksum-crc32", crc } },
      { { "x-amz-checksum-crc32", crc }, { "x-amz-checksum-crc32", crc } },
      { { "x-amz-checksum-crc32c", crc } },
      { { "x-amz-checksum-crc32 ", crc } },
    }
    for i, trailers in ipairs(cases) do
      local res, err = decode(auth, body(auth, { "abcd", "" }, trailers))
      assert.is_nil(res, "case " .. i)
      assert.equals("MalformedTrailerError", err.code, "case " .. i)
    end
    local b = body(auth, { "abcd", "" }, { { "x-amz-checksum-crc32", crc } }):gsub("x%-amz%-checksum%-crc32:",
      "x-amz-checksum-crc32 ")
    local res, err = decode(auth, b)
    assert.is_nil(res)
    assert.equals("MalformedTrailerError", err.code)
  end)
end)

describe("front.s3_error against hostile text", function()
  local xml = require "objstore.xml"
  it("keeps the document well-formed whatever the message, resource and request id hold", function()
    local evil = "</Message><Code>AccessDenied</Code><![CDATA[x]]>&amp;\0\1\27\127\194\128\237\160\128"
      .. "\239\191\190\255\192\175\224\128\175\r\n\t\"'"
    local err = errors.new{ code = "X<y>", status = 403, message = evil, string_to_sign = evil }
    local doc = s3_error.render(err, { resource = evil, request_id = evil, host_id = evil })
    local ok, t = pcall(xml.parse, doc)
    assert.is_true(ok and t ~= nil, tostring(t))
    assert.is_nil(doc:find("<Code>AccessDenied", 1, true))
    assert.is_nil(doc:find("%z"))
    assert.is_nil(doc:find("\1", 1, true))
    assert.is_nil(doc:find("\255", 1, true))
    assert.is_nil(doc:find("\192\175", 1, true))
    assert.is_nil(doc:find("\237\160\128", 1, true))
    assert.equals(1, select(2, doc:gsub("<Code>", "")))
  end)
end)
