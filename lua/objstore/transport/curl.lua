--- HTTP transport on libcurl (`objstore.core` `http`), as the client uses it.
--
--    local curl = require "objstore.transport.curl"
--    local t = assert(curl.new{ connect_timeout = 5, max_connections = 16, tls = { ca_file = path } })
--    local res, err = t:request{ method = "GET", url = url, sink = { file = path } }
--    t:run(source, on_done, 8)   -- several at once, pulled as slots free
--    t:close()
--
-- **Options** of `new` (all optional; an unknown name raises): the one
-- schema of every transport (`objstore.transport.options`: `timeout`,
-- `connect_timeout`, `read_timeout`, `send_timeout`, `max_connections`,
-- `proxy`, `user_agent`, `tls = { ca_file, ca_path, insecure, min_version }`;
-- `tls.server_name` is refused: curl sends the URL's host), defaults:
-- connect_timeout 10 s, timeout 0 = none, max_connections 16 per host,
-- TLS 1.2 at least, the system's CAs, `proxy` "" ignores the *_proxy
-- environment variables. Of curl's own: `low_speed_limit` (bytes/s, default
-- 1) with `low_speed_time` (s, default 30): a transfer slower than that for
-- that long fails with Timeout (read_timeout / send_timeout set them);
-- `verbose`. A server that speaks no TLS version from `tls.min_version` up
-- fails with a TLSError that is not retried.
--
-- **Request** (misuse, e.g. an unknown field, raises naming the field):
--
--  * `method` ("GET"), `url` (required; sent as given, "a/../b" is not
--    normalised);
--  * `headers`: `{ {name, value}, ... }` or `{ name = value }`; an empty value
--    is sent empty. No `Expect: 100-continue` unless `expect_100 = true`;
--    a POST without a Content-Type header goes out without one;
--  * `body`: a string, a `core.buffer` (sent from its memory), `{ file = path,
--    offset = 0, length = rest }` (read with
--    pread as it is sent), or a reader `function() -> chunk | nil | nil, err`;
--    `body_length` gives a reader's total (otherwise it is sent chunked);
--  * `sink`: nil (the body is collected into `res.body`),
--    `function(chunk) -> true | false | nil, err` (false or nil+err aborts;
--    returning nothing goes on), or `{ file = path, offset = 0 }`: written with
--    pwrite at offset + position, the file opened without truncation so that
--    ranged downloads can share one file. Error responses (status >= 300)
--    never reach a sink: their body (up to 1 MiB) is in `res.body`;
--  * `on_head`: `function(status, headers)` called once when the final
--    response's head is read, before any body byte reaches the sink (the
--    contract in objstore.transport: false or nil, err aborts);
--  * `on_progress`: `function(sent, received)`, the body bytes so far (see
--    objstore.transport), from curl's progress meter
--    (CURLOPT_XFERINFOFUNCTION), called by the C run loop outside curl's
--    frames at most every 100 ms;
--  * `hashes`, `body_hashes`: names among md5, sha1, sha256, crc32, crc32c,
--    crc64ecma, crc64nvme, computed in C over the response / request body;
--  * `expect_100`, `timeout` (s, overrides the session's), `max_speed`
--    (bytes/s each way: CURLOPT_MAX_SEND_SPEED_LARGE and _RECV_), `max_body`
--    (bytes: a collected 2xx body over it aborts with ResponseTooLarge before
--    the bytes are kept; 0 or nil: no cap).
--
-- **Result**: `{ status, headers = { ["lower-case-name"] = value } (repeats
-- joined with ", "), body, bytes, sent, total_time, connects (new connections
-- this request opened: 0 when one was reused), hashes = { md5 = raw, ... },
-- body_hashes = { ... } }`. Digests are raw bytes; CRCs big-endian.
--
-- **Errors** are returned, never raised: `{ code, message, curl_code,
-- retryable }` with the shared error metatable (`core.error_mt`, as every
-- objstore error; `tostring(err)` gives "Code - message"). Codes, with
-- their retryable defaults in `require("objstore.transport").CODES`:
-- ConnectFailed, ResolveFailed, Timeout, TLSError, ConnectionReset,
-- BodyTruncated, SendFailed, RecvFailed, ProtocolError (retryable; TLSError
-- only for a handshake cut short, never for a certificate that does not
-- verify or a TLS version refused; ProtocolError not for headers over the
-- cap or an invalid Content-Length), and Aborted (a reader or sink asked to stop),
-- CallbackError (a reader or sink raised; the message is its error),
-- BodyLengthMismatch, LocalFileError, InvalidURL, OutOfMemory,
-- TransportError, ResponseTooLarge. An HTTP error status is not an error here: it is a result.
--
-- **fork()**: a transport used in a child of the process that made it (nginx
-- workers inherit what init_by_lua made) leaves the inherited libcurl
-- handles and their pooled connections untouched — they are the parent's
-- and its other children's — and goes on with new ones (the C session
-- notices the changed pid), so no two processes ever read one socket.
--
-- It meets the transport contract of `objstore.transport` with every
-- capability (`t.capabilities`: hashes, body_hashes, file_body, file_sink,
-- run, buffer_body), `t:sleep(s)` blocks the process (core.time.sleep, a nanosleep), and
-- `t.retryable_exceptions` names the codes whose retryable can differ from
-- the default.
-- @module objstore.transport.curl

local core = require "objstore.core"
local errors = require "objstore.errors"
local options = require "objstore.transport.options"

local setmetatable, getmetatable = setmetatable, getmetatable

local http = core.http
local sleep = core.time.sleep

local curl = { _VERSION = core._VERSION, curl_version = http.curl_version }

local Transport = {}
Transport.__index = Transport

--- Codes whose `retryable` can differ from their default in CODES, and why.
local RETRYABLE_EXCEPTIONS = {
  TLSError = "a TLS handshake cut short is a network failure (retryable); "
    .. "a certificate that does not verify, or no TLS version in common, is not",
  ProtocolError = "a response whose headers exceed the 1 MiB cap, or whose Content-Length is not a "
    .. "number up to 2^53, is not retried",
}

-- Options of this transport beyond the schema of objstore.transport.options,
-- and the schema's names it cannot honour.
local OWN = { verbose = "boolean", low_speed_limit = "number", low_speed_time = "number" }
local CANNOT = {
  ["tls.server_name"] = "is not supported by the curl transport (the TLS name is the URL's host)",
}

--- A new transport (one libcurl multi handle and its connection cache).
-- Options: the schema of `objstore.transport.options` (read_timeout and
-- send_timeout become libcurl's low-speed limit: no byte either way for that
-- many whole seconds fails with Timeout) and `verbose`, `low_speed_limit`,
-- `low_speed_time`. @return transport, or nil, err
function curl.new(opts)
  local tls
  opts, tls = options.check("transport.curl.new", opts, OWN, CANNOT)
  local idle = opts.read_timeout
  if opts.send_timeout and (not idle or opts.send_timeout < idle) then idle = opts.send_timeout end
  if idle == 0 then idle = nil end
  if idle and (opts.low_speed_limit ~= nil or opts.low_speed_time ~= nil) then
    errors.argument("transport.curl.new", 1, "opts.low_speed_limit",
      "cannot be given with read_timeout or send_timeout (they set it)")
  end
  local session, err = http.session {
    timeout = opts.timeout, connect_timeout = opts.connect_timeout, proxy = opts.proxy,
    user_agent = opts.user_agent, max_connections = opts.max_connections, verbose = opts.verbose,
    ca_file = tls.ca_file, ca_path = tls.ca_path, insecure = tls.insecure, tls_min_version = tls.min_version,
    low_speed_limit = idle and 1 or opts.low_speed_limit,
    low_speed_time = idle and math.max(1, math.ceil(idle)) or opts.low_speed_time,
  }
  if not session then return nil, err end
  return setmetatable({
    session = session,
    capabilities = { hashes = true, body_hashes = true, file_body = true, file_sink = true, run = true,
      buffer_body = true, progress = true },
    retryable_exceptions = RETRYABLE_EXCEPTIONS,
  }, Transport)
end

--- Whether `t` is a transport of this module. Its `run` cannot be entered
-- again from its own callbacks (the session is busy), so code that must
-- send while a run is under way (a credentials refresh) uses another one.
function curl.is(t)
  return getmetatable(t) == Transport
end

--- One request. @return res, or nil, err
function Transport:request(req)
  return self.session:request(req)
end

--- Pull-model concurrency: `source()` returns the next request (or nil
-- when none is ready) whenever a slot is free, and is asked again after
-- every completion; `on_done(req, res, err)` gets each outcome. Returns
-- true when nothing is running and the source has nothing; nil, err
-- (TransportError) when the curl multi handle itself failed, after every
-- running request has had that error through on_done.
function Transport:run(source, on_done, concurrency)
  return self.session:run(source, on_done, concurrency)
end

--- Sleeps `seconds`, blocking the process (the backoff sleeper outside
-- OpenResty).
function Transport.sleep(_, seconds)
  sleep(seconds)
end

--- Closes every connection; idempotent.
function Transport:close()
  self.session:close()
end

return curl
