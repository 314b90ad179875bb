--- HTTP transport on libcurl (`objstore.core` `http`), as the client uses it.
--
--    local curl = require "objstore.transport.curl"
--    local t = assert(curl.new{ connect_timeout = 5, max_connections = 16 })
--    local res, err = t:request{ method = "GET", url = url, sink = { file = path } }
--    local results, errs = t:request_many(reqs, 8)
--    t:close()
--
-- **Options** of `new` (all optional; an unknown name raises):
-- `connect_timeout` (s, default 10), `timeout` (whole request, s, default 0 =
-- none), `low_speed_limit` (bytes/s, default 1) with `low_speed_time` (s,
-- default 30): a transfer slower than that for that long fails with Timeout;
-- `ca_file`, `ca_path`, `insecure` (true turns TLS verification off),
-- `proxy` ("" ignores the *_proxy environment variables), `user_agent`
-- (default "objstore/<version>"), `max_connections` (per host, default 16;
-- also the default concurrency of `request_many`), `verbose`.
--
-- **Request** (misuse, e.g. an unknown field, raises naming the field):
--
--  * `method` ("GET"), `url` (required; sent as given, "a/../b" is not
--    normalised);
--  * `headers`: `{ {name, value}, ... }` or `{ name = value }`; an empty value
--    is sent empty. No `Expect: 100-continue` unless `expect_100 = true`;
--    a POST without a Content-Type header goes out without one;
--  * `body`: a string, `{ file = path, offset = 0, length = rest }` (read with
--    pread as it is sent), or a reader `function() -> chunk | nil | nil, err`;
--    `body_length` gives a reader's total (otherwise it is sent chunked);
--  * `sink`: nil (the body is collected into `res.body`),
--    `function(chunk) -> true | false | nil, err` (false or nil+err aborts;
--    returning nothing goes on), or `{ file = path, offset = 0 }`: written with
--    pwrite at offset + position, the file opened without truncation so that
--    ranged downloads can share one file. Error responses (status >= 300)
--    never reach a sink: their body (up to 1 MiB) is in `res.body`;
--  * `hashes`, `body_hashes`: names among md5, sha1, sha256, crc32, crc32c,
--    crc64ecma, crc64nvme, computed in C over the response / request body;
--  * `expect_100`, `timeout` (s, overrides the session's).
--
-- **Result**: `{ status, headers = { ["lower-case-name"] = value } (repeats
-- joined with ", "), body, bytes, sent, total_time, connects (new connections
-- this request opened: 0 when one was reused), hashes = { md5 = raw, ... },
-- body_hashes = { ... } }`. Digests are raw bytes; CRCs big-endian.
--
-- **Errors** are returned, never raised: `{ code, message, curl_code,
-- retryable }` with this module's metatable (`tostring(err)` gives
-- "Code: message"). Codes: ConnectFailed, ResolveFailed, Timeout, TLSError,
-- ConnectionReset, BodyTruncated, SendFailed, RecvFailed, ProtocolError
-- (retryable, except TLS certificate failures), and Aborted (a reader or sink
-- asked to stop), CallbackError (a reader or sink raised; the message is its
-- error), BodyLengthMismatch, LocalFileError, InvalidURL, OutOfMemory,
-- TransportError. An HTTP error status is not an error here: it is a result.
-- @module objstore.transport.curl

local core = require "objstore.core"

local setmetatable, getmetatable, type, tostring, pairs = setmetatable, getmetatable, type, tostring, pairs

local http = core.http

local curl = { _VERSION = core._VERSION, curl_version = http.curl_version }

local error_mt = {
  __tostring = function(e)
    return tostring(e.code) .. ": " .. tostring(e.message)
  end,
}
curl.error_mt = error_mt

--- Gives a transport error table the module's metatable (returns it).
function curl.wrap_error(err)
  if type(err) == "table" and getmetatable(err) == nil then setmetatable(err, error_mt) end
  return err
end
local wrap_error = curl.wrap_error

local Transport = {}
Transport.__index = Transport

--- A new transport (one libcurl multi handle and its connection cache).
-- @return transport, or nil, err
function curl.new(opts)
  local session, err = http.session(opts)
  if not session then return nil, wrap_error(err) end
  return setmetatable({ session = session }, Transport)
end

--- One request. @return res, or nil, err
function Transport:request(req)
  local res, err = self.session:request(req)
  if not res then return nil, wrap_error(err) end
  return res
end

--- Many requests at once, at most `concurrency` at a time (default the
-- session's max_connections). @return results, errs: results[i] is the
-- result, or false with errs[i] the error (errs is sparse).
function Transport:request_many(reqs, concurrency)
  local results, errs = self.session:perform(reqs, concurrency)
  for _, e in pairs(errs) do wrap_error(e) end
  return results, errs
end

--- Pull-model concurrency: `source()` returns the next request (or nil
-- when none is ready) whenever a slot is free, and is asked again after
-- every completion; `on_done(req, res, err)` gets each outcome. Returns
-- when nothing is running and the source has nothing.
function Transport:run(source, on_done, concurrency)
  self.session:run(source, function(req, res, err)
    if err then wrap_error(err) end
    return on_done(req, res, err)
  end, concurrency)
end

--- Closes every connection; idempotent.
function Transport:close()
  self.session:close()
end

return curl
