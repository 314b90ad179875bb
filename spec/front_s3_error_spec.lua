-- objstore.front.s3_error: S3's XML error document, escaped and safe for
-- any bytes an error may carry (keys, headers, canonical requests).
local s3_error = require "objstore.front.s3_error"
local errors = require "objstore.errors"
local xml = require "objstore.xml"

describe("front.s3_error", function()
  it("renders code, message, the S3 extra elements, resource and request id", function()
    local err = errors.new{ code = "SignatureDoesNotMatch", status = 403,
      message = "The request signature <we> calculated",
      access_key_id = "AKID", string_to_sign = "AWS4-HMAC-SHA256\n20130524T000000Z\nscope\nabc",
      signature_provided = "00ff", canonical_request = "GET\n/a&b\n\nhost:x\n\nhost\nUNSIGNED-PAYLOAD" }
    local body, status = s3_error.render(err, { resource = "/bkt/a&b", request_id = "R1", host_id = "H1" })
    assert.equals(403, status)
    assert.equals('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
      .. "<Message>The request signature &lt;we&gt; calculated</Message><AWSAccessKeyId>AKID</AWSAccessKeyId>"
      .. "<StringToSign>AWS4-HMAC-SHA256\n20130524T000000Z\nscope\nabc</StringToSign>"
      .. "<SignatureProvided>00ff</SignatureProvided>"
      .. "<CanonicalRequest>GET\n/a&amp;b\n\nhost:x\n\nhost\nUNSIGNED-PAYLOAD</CanonicalRequest>"
      .. "<Resource>/bkt/a&amp;b</Resource><RequestId>R1</RequestId><HostId>H1</HostId></Error>", body)
    -- and it parses back (the project's own libxml2 reader)
    local doc = assert(xml.parse(body))
    assert.is_table(doc)
  end)

  it("makes invalid UTF-8 and control bytes safe", function()
    local nasty = "k\0e\1y\255\192\175\237\160\128ok\239\191\190\r\n\t\195\169\240\159\152\128"
    local body = s3_error.render({ code = "NoSuchKey", status = 404, message = "x" }, { resource = "/b/" .. nasty })
    local res = body:match("<Resource>(.-)</Resource>")
    local R = "\239\191\189"
    assert.equals("/b/k" .. R .. "e" .. R .. "y" .. R .. R .. R .. R .. R .. R .. "ok" .. R .. R .. R
      .. "&#13;\n\t\195\169\240\159\152\128", res)
    assert.is_truthy(xml.parse(body))
  end)

  it("defaults to InternalError 500 and raises on misuse", function()
    local body, status = s3_error.render({ message = "boom" })
    assert.equals(500, status)
    assert.matches("<Code>InternalError</Code>", body)
    assert.has_error(function() s3_error.render("x") end)
    assert.has_error(function() s3_error.render({}, { resourse = "/" }) end)
  end)

  it("maps nginx's own statuses to S3's codes, anything else to InternalError", function()
    local e = s3_error.for_nginx_status(413)
    assert.same({ "EntityTooLarge", 400 }, { e.code, e.status })
    e = s3_error.for_nginx_status(494)
    assert.same({ "RequestHeaderSectionTooLarge", 400 }, { e.code, e.status })
    e = s3_error.for_nginx_status(502)
    assert.same({ "InternalError", 500 }, { e.code, e.status })
    assert.equal(404, s3_error.STATUS.NoSuchKey)
    assert.is_nil(s3_error.STATUS.Timeout)
  end)
end)
