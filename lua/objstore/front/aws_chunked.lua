--- An incremental decoder for `Content-Encoding: aws-chunked` request
-- bodies (S3 streaming uploads), checking what S3 checks as the bytes come:
--
--     local auth = assert(sigv4.verify(req, lookup))     -- payload STREAMING-...
--     local dec = aws_chunked.new(auth)
--     for piece in body_pieces do
--       local data, err = dec:feed(piece)               -- decoded bytes, maybe ""
--       if not data then return reply(s3_error.render(err)) end
--       upstream:write(data)
--     end
--     local res, err = dec:finish()                    -- { length, trailers }
--
-- Each chunk's signature is checked in order, chained from the seed
-- signature (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]); the final
-- 0-length chunk too; the decoded length against x-amz-decoded-content-length;
-- the trailers (x-amz-checksum-crc32/crc32c/crc64nvme/sha1/sha256, base64,
-- against a running checksum of the payload; x-amz-trailer-signature for the
-- signed-trailer variant). STREAMING-UNSIGNED-PAYLOAD-TRAILER has no chunk
-- signatures, only the trailer checksum.
--
-- By default the bytes of a signed chunk are returned once its signature
-- has been checked, so at most one chunk (opts.max_chunk_size) is held;
-- opts.early = true returns them as they are decoded. Either way finish()
-- is the verdict on the whole body (trailer checksum, length): a caller
-- streaming elsewhere must abort when it fails. Chunk-size and trailer lines
-- are bounded (opts.max_line), so a hostile body cannot grow the buffer.
-- Failures return nil, err (an objstore error with the S3 code and status)
-- and no bytes, even verified ones decoded in the same call; after one,
-- every call returns the same error.
-- @module objstore.front.aws_chunked
local core = require "objstore.core"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local sigv4 = require "objstore.front.sigv4"

local type, tonumber, tostring, setmetatable, pairs, ipairs = type, tonumber, tostring, setmetatable, pairs, ipairs
local lower, upper, sub, find, match = string.lower, string.upper, string.sub, string.find, string.match
local concat = table.concat
local min = math.min

local same = sigv4.constant_time_equal

local _M = { _VERSION = core._VERSION }

local EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
local MIN_CHUNK = 8192 -- S3: every signed chunk but the last is at least 8 KiB

--- What each payload declaration means for the wire format.
local MODES = {
  ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"] = { signed = true, trailer = false },
  ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"] = { signed = true, trailer = true },
  ["STREAMING-UNSIGNED-PAYLOAD-TRAILER"] = { signed = false, trailer = true },
}

--- Trailer names of the checksums S3 accepts, and the algorithm of each.
local CHECKSUMS = {
  ["x-amz-checksum-crc32"] = "crc32", ["x-amz-checksum-crc32c"] = "crc32c",
  ["x-amz-checksum-crc64nvme"] = "crc64nvme", ["x-amz-checksum-sha1"] = "sha1",
  ["x-amz-checksum-sha256"] = "sha256",
}
--- The x-amz-checksum-* header (and trailer) names and their algorithms
-- (the front server checks the same headers on whole bodies).
_M.CHECKSUMS = CHECKSUMS

local OPTIONS = { max_chunk_size = "number", max_line = "number", max_trailers = "number",
  min_chunk_size = "number", early = "boolean" }

local LINE, DATA, DATA_END, TRAILER, DONE = 1, 2, 3, 4, 5

local D = {}
D.__index = D
_M.Decoder = D -- the decoders' methods (for the reference)

local function failure(self, code, status, message, extra)
  local e = { code = code, status = status, message = message, retryable = false }
  for k, v in pairs(extra or {}) do e[k] = v end
  self.err = errors.new(e)
  self.state = DONE
  return nil, self.err
end

local function framing(self, what)
  return failure(self, "InvalidRequest", 400, "Malformed aws-chunked body: " .. what)
end

--- Creates a decoder for a request verified by objstore.front.sigv4.verify
-- (`auth`: its result; payload must be one of the STREAMING-* values).
-- `opts`: max_chunk_size (bytes, default 8 MiB), max_line (bytes of a
-- chunk-size or trailer line, default 1024), max_trailers (default 16),
-- min_chunk_size (signed chunks but the last, default 8192 as S3; 0: none),
-- early (return bytes before their chunk's signature is checked).
-- Raises on misuse (auth not a streaming verification result).
function _M.new(auth, opts)
  if type(auth) ~= "table" then
    errors.argument("front.aws_chunked.new", 1, "auth", "must be a table, " .. errors.got(auth))
  end
  local mode = MODES[auth.payload]
  if not mode then
    errors.argument("front.aws_chunked.new", 1, "auth.payload", "must be a STREAMING-* payload, got "
      .. tostring(auth.payload))
  end
  if mode.signed and (type(auth.seed_signature) ~= "string" or type(auth.chunk_signer) ~= "table") then
    errors.argument("front.aws_chunked.new", 1, "auth", "must hold seed_signature and chunk_signer")
  end
  opts = errors.options("front.aws_chunked.new", 2, opts, OPTIONS)
  -- The checksum announced by x-amz-trailer, computed as the bytes pass.
  local declared, sum = nil, nil
  if type(auth.trailer) == "string" and auth.trailer ~= "" then
    declared = lower(match(auth.trailer, "^%s*(.-)%s*$"))
    if not CHECKSUMS[declared] then
      errors.argument("front.aws_chunked.new", 1, "auth.trailer", "is not a checksum trailer S3 knows: " .. declared)
    end
    sum = checksum.new(CHECKSUMS[declared])
  end
  return setmetatable({
    mode = mode, signer = auth.chunk_signer, prev = auth.seed_signature,
    expected_length = auth.decoded_content_length,
    max_chunk = opts.max_chunk_size or 8 * 1024 * 1024, max_line = opts.max_line or 1024,
    max_trailers = opts.max_trailers or 16, min_chunk = opts.min_chunk_size or MIN_CHUNK,
    early = opts.early == true or not mode.signed,
    declared = declared, sum = sum,
    state = LINE, rest = "", left = 0, length = 0, chunks = 0, last_size = nil,
    held = {}, trailers = {}, trailer_sig = nil,
  }, D)
end

--- Checks a chunk's signature (data hashed in `sha`: nil for the empty chunk).
local function check_chunk(self, sha)
  if not self.mode.signed then return true end
  local hex = sha and sha:hexdigest() or EMPTY_SHA256
  local want = self.signer:chunk(self.prev, hex)
  if not same(want, self.chunk_sig) then
    return failure(self, "SignatureDoesNotMatch", 403, "The request signature we calculated does not match the "
      .. "signature you provided. Check your key and signing method.",
      { chunk = self.chunks, signature_provided = self.chunk_sig })
  end
  self.prev = want
  return true
end

--- A chunk-size line: "<hex>;chunk-signature=<sig>" (signed) or "<hex>".
local function size_line(self, line)
  local hex, ext = match(line, "^(%x+)(.*)$")
  if not hex then return framing(self, "the chunk size is not hexadecimal") end
  local sig
  if self.mode.signed then
    sig = match(ext, "^;chunk%-signature=(%x+)$")
    if not sig or #sig ~= 64 then return framing(self, "a chunk has no valid chunk-signature") end
  elseif ext ~= "" then
    return framing(self, "unexpected chunk extension")
  end
  hex = match(hex, "^0*(.-)$")
  if #hex > 12 or (tonumber(hex ~= "" and hex or "0", 16) > self.max_chunk) then
    return framing(self, "a chunk is larger than " .. tostring(self.max_chunk) .. " bytes")
  end
  local size = tonumber(hex ~= "" and hex or "0", 16)
  -- S3 refuses small chunks anywhere but at the end of a signed stream.
  if self.mode.signed and size > 0 and self.last_size and self.last_size < self.min_chunk then
    return failure(self, "InvalidChunkSizeError", 400, "Only the last chunk is allowed to have a size less than "
      .. tostring(self.min_chunk) .. " bytes", { chunk = self.chunks, bad_chunk_size = self.last_size })
  end
  self.chunks = self.chunks + 1
  self.chunk_sig = sig and lower(sig)
  self.last_size = size
  if size == 0 then
    local ok, err = check_chunk(self, nil)
    if not ok then return nil, err end
    self.state = TRAILER
    return true
  end
  self.left = size
  self.sha = self.mode.signed and checksum.new("sha256") or nil
  self.state = DATA
  return true
end

--- The end of the trailer section: signature, checksum, length.
local function finish_trailers(self)
  local list = self.trailers
  if self.mode.signed and self.mode.trailer then
    if not self.trailer_sig then
      return failure(self, "MalformedTrailerError", 400, "The trailer has no x-amz-trailer-signature.")
    end
    local lines = {}
    for i, t in ipairs(list) do lines[i] = t[1] .. ":" .. t[2] .. "\n" end
    local want = self.signer:trailer(self.prev, checksum.sha256_hex(concat(lines)))
    if not same(want, self.trailer_sig) then
      return failure(self, "SignatureDoesNotMatch", 403, "The request signature we calculated does not match "
        .. "the signature you provided. Check your key and signing method.",
        { signature_provided = self.trailer_sig })
    end
  end
  local by_name = {}
  for _, t in ipairs(list) do by_name[t[1]] = t[2] end
  if self.declared then
    local got = by_name[self.declared]
    if not got then
      return failure(self, "MalformedTrailerError", 400, "The trailer " .. self.declared
        .. " announced by x-amz-trailer is missing.")
    end
    local computed = self.sum:base64digest()
    if got ~= computed then
      local alg = upper(CHECKSUMS[self.declared])
      return failure(self, "BadDigest", 400, "The " .. alg .. " you specified did not match the calculated checksum.",
        { client_checksum = got, computed_checksum = computed })
    end
  end
  if self.expected_length and self.length ~= self.expected_length then
    return failure(self, "IncompleteBody", 400, "You did not provide the number of bytes specified by the "
      .. "x-amz-decoded-content-length HTTP header", { expected_length = self.expected_length, length = self.length })
  end
  self.result = { length = self.length, trailers = by_name, chunks = self.chunks }
  self.state = DONE
  return true
end

local function trailer_line(self, line)
  if line == "" then return finish_trailers(self) end
  if not self.mode.trailer then
    return failure(self, "MalformedTrailerError", 400, "Trailers are not allowed for this x-amz-content-sha256.")
  end
  local name, value = match(line, "^([%w%-]+):[ \t]*(.-)[ \t]*$")
  if not name then return failure(self, "MalformedTrailerError", 400, "A trailer line is malformed.") end
  name = lower(name)
  if name == "x-amz-trailer-signature" then
    if not self.mode.signed or self.trailer_sig or not match(value, "^%x+$") or #value ~= 64 then
      return failure(self, "MalformedTrailerError", 400, "Unexpected or malformed x-amz-trailer-signature.")
    end
    self.trailer_sig = lower(value)
    return true
  end
  if self.trailer_sig then
    return failure(self, "MalformedTrailerError", 400, "A trailer follows x-amz-trailer-signature.")
  end
  if name ~= self.declared then
    return failure(self, "MalformedTrailerError", 400, "The trailer " .. name .. " was not announced by x-amz-trailer.")
  end
  -- A repeated trailer is refused: finish_trailers keeps one value per
  -- name, so "crc32:<bad>" then "crc32:<good>" would pass the check while
  -- another reader of the same trailers takes the first.
  for _, t in ipairs(self.trailers) do
    if t[1] == name then
      return failure(self, "MalformedTrailerError", 400, "The trailer " .. name .. " appears more than once.")
    end
  end
  if #self.trailers >= self.max_trailers then
    return failure(self, "MalformedTrailerError", 400, "Too many trailers.")
  end
  self.trailers[#self.trailers + 1] = { name, value }
  return true
end

--- Feeds the next bytes of the body; returns the payload bytes that are
-- ready (a string, maybe empty) or nil, err.
function D:feed(bytes)
  if type(bytes) ~= "string" then
    errors.argument("front.aws_chunked.feed", 1, "bytes", "must be a string, " .. errors.got(bytes))
  end
  if self.err then return nil, self.err end
  if self.state == DONE then
    if bytes ~= "" then return framing(self, "data after the end of the body") end
    return ""
  end
  local s = self.rest .. bytes
  self.rest = ""
  local i, n = 1, #s
  local out = {}
  while i <= n and self.state ~= DONE do
    local st = self.state
    if st == LINE or st == TRAILER then
      local e = find(s, "\r\n", i, true)
      if not e or e - i > self.max_line then
        if (e and e - i or n - i) > self.max_line then return framing(self, "a line is too long") end
        self.rest = sub(s, i)
        break
      end
      local line = sub(s, i, e - 1)
      i = e + 2
      if find(line, "[\r\n%z]") then return framing(self, "a line holds CR, LF or NUL") end
      local ok, err
      if st == LINE then ok, err = size_line(self, line) else ok, err = trailer_line(self, line) end
      if not ok then return nil, err end
    elseif st == DATA then
      local take = min(self.left, n - i + 1)
      local piece = sub(s, i, i + take - 1)
      i = i + take
      self.left = self.left - take
      self.length = self.length + take
      if self.expected_length and self.length > self.expected_length then
        return failure(self, "IncompleteBody", 400, "The body holds more bytes than x-amz-decoded-content-length says.")
      end
      if self.sha then self.sha:update(piece) end
      if self.sum then self.sum:update(piece) end
      if self.early then out[#out + 1] = piece else self.held[#self.held + 1] = piece end
      if self.left == 0 then self.state = DATA_END end
    else -- DATA_END: the CRLF after the data, then the chunk's signature
      if n - i < 1 then
        self.rest = sub(s, i)
        break
      end
      if sub(s, i, i + 1) ~= "\r\n" then return framing(self, "a chunk's data is not followed by CRLF") end
      i = i + 2
      local ok, err = check_chunk(self, self.sha)
      if not ok then return nil, err end
      self.sha = nil
      for k = 1, #self.held do
        out[#out + 1] = self.held[k]
        self.held[k] = nil
      end
      self.state = LINE
    end
  end
  if self.state == DONE and i <= n then return framing(self, "data after the end of the body") end
  return concat(out)
end

--- Ends the body: returns { length, trailers = {name = value}, chunks } or
-- nil, err (IncompleteBody when the body stopped early).
function D:finish()
  if self.err then return nil, self.err end
  if self.state ~= DONE then
    return failure(self, "IncompleteBody", 400, "The request body terminated unexpectedly")
  end
  return self.result
end

return _M
