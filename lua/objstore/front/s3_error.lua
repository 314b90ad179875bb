--- Renders an objstore error as S3's XML error document, for a front that
-- answers S3 clients:
--
--     local body, status = s3_error.render(err, { resource = "/b/k", request_id = id })
--     --> <?xml version="1.0" encoding="UTF-8"?>
--     --  <Error><Code>SignatureDoesNotMatch</Code><Message>...</Message>...</Error>, 403
--
-- The elements S3 adds to some errors (StringToSign, CanonicalRequest,
-- HeadersNotSigned, RequestTime, ...) come from the error's fields of the
-- same meaning (see FIELDS). Text is XML-escaped; bytes that are not valid
-- UTF-8 or not allowed in XML 1.0 become U+FFFD, so a hostile key or header
-- cannot break the document.
-- @module objstore.front.s3_error
local core = require "objstore.core"
local errors = require "objstore.errors"

local type, tostring, ipairs = type, tostring, ipairs
local byte, sub, gsub = string.byte, string.sub, string.gsub
local concat = table.concat

local _M = { _VERSION = core._VERSION }

--- Error fields rendered as extra elements, in S3's order.
local FIELDS = {
  { "argument_name", "ArgumentName" }, { "argument_value", "ArgumentValue" },
  { "region", "Region" },
  { "headers_not_signed", "HeadersNotSigned" },
  { "access_key_id", "AWSAccessKeyId" },
  { "string_to_sign", "StringToSign" }, { "signature_provided", "SignatureProvided" },
  { "canonical_request", "CanonicalRequest" },
  { "request_time", "RequestTime" }, { "server_time", "ServerTime" },
  { "max_allowed_skew_ms", "MaxAllowedSkewMilliseconds" },
  { "expires_seconds", "X-Amz-Expires" }, { "expires", "Expires" },
  { "client_computed_content_sha256", "ClientComputedContentSHA256" },
  { "s3_computed_content_sha256", "S3ComputedContentSHA256" },
}
_M.FIELDS = FIELDS

-- the payload bits of a lead byte of a 2, 3 or 4 byte sequence
local LEAD_MOD = { [2] = 32, [3] = 16, [4] = 8 }
local REPLACEMENT = "\239\191\189" -- U+FFFD
local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }

--- Valid UTF-8 with only XML 1.0 characters (tab, LF, CR and >= 0x20,
-- no surrogates, no U+FFFE/U+FFFF); anything else becomes U+FFFD.
local function clean_utf8(s)
  if not s:find("[%z\1-\8\11\12\14-\31\127-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = byte(s, i)
    local len, min
    if c < 0x80 then
      len = 1
    elseif c >= 0xC2 and c <= 0xDF then
      len, min = 2, 0x80
    elseif c >= 0xE0 and c <= 0xEF then
      len, min = 3, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then
      len, min = 4, 0x10000
    end
    local cp
    if len == 1 then
      cp = c
    elseif len and i + len - 1 <= n then
      cp = c % LEAD_MOD[len]
      for j = i + 1, i + len - 1 do
        local cc = byte(s, j)
        if cc < 0x80 or cc > 0xBF then cp = nil; break end
        cp = cp * 64 + (cc - 0x80)
      end
      if cp and (cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) or cp == 0xFFFE or cp == 0xFFFF) then
        cp = nil
      end
    end
    local ok = cp and (cp >= 0x20 or cp == 9 or cp == 10 or cp == 13) and cp ~= 0x7F
    if ok then
      out[#out + 1] = sub(s, i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = REPLACEMENT
      i = i + 1
    end
  end
  return concat(out)
end

--- Text safe inside an XML element: escaped, valid UTF-8, XML characters only.
function _M.escape(s)
  s = clean_utf8(tostring(s))
  -- CR would be read back as LF by an XML parser: keep it as a reference
  return (gsub(gsub(s, "[&<>\"']", ESCAPES), "\r", "&#13;"))
end

local function element(out, name, value)
  if value == nil or value == "" then return end
  out[#out + 1] = "<" .. name .. ">" .. _M.escape(value) .. "</" .. name .. ">"
end

--- The XML document and HTTP status for `err` (an objstore error or any
-- table with code, message, status). `opts`: resource (the request path),
-- request_id, host_id. An error without a status answers 500; one without
-- a code is an InternalError.
function _M.render(err, opts)
  if type(err) ~= "table" then
    errors.argument("front.s3_error.render", 1, "err", "must be an error table, " .. errors.got(err))
  end
  opts = errors.options("front.s3_error.render", 2, opts,
    { resource = "string", request_id = "string", host_id = "string" })
  local code = err.code ~= nil and tostring(err.code) or "InternalError"
  local status = type(err.status) == "number" and err.status or 500
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' }
  element(out, "Code", code)
  element(out, "Message", err.message or "")
  for _, f in ipairs(FIELDS) do element(out, f[2], err[f[1]]) end
  element(out, "Resource", opts.resource)
  element(out, "RequestId", opts.request_id)
  element(out, "HostId", opts.host_id)
  out[#out + 1] = "</Error>"
  return concat(out), status
end

--- The store's error codes a front passes on to its client, by S3's
-- status; any other store error is the front's InternalError (its message
-- may name the store's bucket, key or host).
_M.STATUS = {
  NoSuchKey = 404, InvalidRange = 416, PreconditionFailed = 412, BadDigest = 400, InvalidDigest = 400,
  EntityTooLarge = 400, EntityTooSmall = 400, InvalidArgument = 400, SlowDown = 503, AccessDenied = 403,
  NoSuchUpload = 404, InvalidPart = 400, InvalidPartOrder = 400, MalformedXML = 400, InvalidTag = 400,
}

--- S3's messages for those codes, and for the errors a front makes itself.
_M.MESSAGES = {
  NoSuchKey = "The specified key does not exist.", InvalidRange = "The requested range is not satisfiable",
  PreconditionFailed = "At least one of the pre-conditions you specified did not hold",
  BadDigest = "The Content-MD5 you specified did not match what we received.",
  InvalidDigest = "The Content-MD5 you specified is not valid.", SlowDown = "Please reduce your request rate.",
  AccessDenied = "Access Denied", EntityTooLarge = "Your proposed upload exceeds the maximum allowed size",
  NoSuchUpload = "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
    .. "aborted or completed.",
  InvalidPart = "One or more of the specified parts could not be found. The part may not have been uploaded, or "
    .. "the specified entity tag may not match the part's entity tag.",
  InvalidPartOrder = "The list of parts was not in ascending order. Parts must be ordered by part number.",
  MalformedXML = "The XML you provided was not well-formed or did not validate against our published schema",
  EntityTooSmall = "Your proposed upload is smaller than the minimum allowed object size.",
  InternalError = "We encountered an internal error. Please try again.",
  InvalidTag = "The TagKey or TagValue you have provided is invalid",
  InvalidArgument = "Invalid Argument",
}

-- nginx's own refusals (made before the handler runs, or instead of it)
-- as S3 answers them: { code, status, message }.
local NGINX = {
  [400] = { "BadRequest", 400, "An error occurred when parsing the HTTP request." },
  [408] = { "RequestTimeout", 400, "Your socket connection to the server was not read from or written to "
    .. "within the timeout period." },
  [411] = { "MissingContentLength", 411, "You must provide the Content-Length HTTP header." },
  [413] = { "EntityTooLarge", 400, _M.MESSAGES.EntityTooLarge },
  [414] = { "InvalidURI", 400, "Couldn't parse the specified URI." },
  [494] = { "RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size." },
  [503] = { "ServiceUnavailable", 503, "Please reduce your request rate." },
}

--- The S3 error for a status nginx answered by itself: an error table
-- (code, status, message) for render; InternalError (500) for any other.
function _M.for_nginx_status(status)
  local e = NGINX[status] or { "InternalError", 500, _M.MESSAGES.InternalError }
  return errors.new{ code = e[1], status = e[2], message = e[3] }
end

return _M
