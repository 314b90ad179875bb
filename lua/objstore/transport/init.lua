--- The transport contract: what every HTTP transport of objstore does, and
-- the pieces the transports and the layer above them share.
--
-- Everything above a transport (signing, retries, failover, transfers) is
-- written once against this contract; `objstore.transport.curl` (libcurl)
-- and `objstore.transport.ngx` (OpenResty cosockets) implement it, and so may
-- a custom object handed to `objstore.new{ transport = t }`. The one spec of
-- the contract is `spec/support/transport_contract.lua`: every transport
-- must pass it unchanged.
--
--    local transport = require "objstore.transport"
--    transport.check(t)                       -- raises unless t has the shape
--    local run = transport.runner(t)          -- run(source, on_done, n)
--    local sleep = transport.sleeper(t)       -- sleep(seconds)
--    return nil, transport.error("Timeout", "no answer in 5 s")
--
-- **Methods.** Only `request` is required; a transport shipped with objstore
-- has them all.
--
--  * `t:request(req) -> res | nil, err`.
--  * `t:run(source, on_done, n)`: pull-model concurrency, up to `n` requests
--    at once (nil: the transport's default). `source()` gives the next
--    request, or nil when none is ready; it is asked again whenever a slot is
--    free and after every completion (so a request that completes may make
--    more available). `on_done(req, res, err)` is called exactly once per
--    request handed out, with `req` the very table `source` returned. `run`
--    returns true when nothing is running and `source` has nothing, or nil,
--    err when the transport itself failed (every request then running has
--    had that error through on_done). An error raised by `source` or
--    `on_done` is raised by `run`.
--  * `t:sleep(seconds)`: the sleeper the layer above uses for backoff; it
--    must suit the transport's I/O model: a blocking nanosleep
--    (`core.time.sleep`) for curl, `ngx.sleep` (which yields) for cosockets.
--  * `t:close()`: releases the connections; idempotent. A closed transport
--    raises when asked to `request` or `run`.
--  * `t:semaphore()` (optional): a new semaphore of the transport's I/O
--    model, `{ wait(seconds) -> true | false, err, post(n), count()? }`, for
--    the layer above to wait on another request's work (a credentials
--    refresh) and be woken once when it is done, instead of polling with
--    sleep (`count`, when present: negative, the number of waiters). Only a
--    transport whose requests run concurrently in one process needs it
--    (cosockets: ngx.semaphore; transport.auto gives one in the phases where
--    it uses cosockets); `wait` returns false, err where the phase cannot
--    wait.
--  * `t.capabilities`: `{ hashes, body_hashes, file_body, file_sink, run,
--    buffer_body, progress }`, all booleans (progress: it takes
--    `on_progress`; without it the layer above leaves the field out and
--    counts a request's bytes when it ends). A transport that lacks an optional capability says so
--    (false), and the layer above does that part itself: hashes the bytes,
--    turns a file range or a buffer into a reader, writes a function sink
--    into the file.
--    Given a field it lacks the capability for, a transport raises (misuse)
--    rather than ignore it, so that a missing fallback shows at once.
--    `run` is true exactly when `t.run` is a function.
--  * `t.retryable_exceptions` (optional): `{ [code] = "why" }` for codes
--    whose `retryable` the transport sets differently from `CODES` in some
--    cases (curl: a TLS handshake cut short is retryable, a certificate
--    failure is not).
--
-- **Request** (misuse, such as an unknown field or a wrong type, raises):
--
--  * `method` (default "GET"), `url` (required, sent as given);
--  * `headers`: `{ name = value }` or `{ {name, value}, ... }`;
--  * `body`: nil or "" (none), a string, a file range
--    `{ file = path, offset = 0, length = rest }` (read as it is sent, never
--    whole into memory), or a reader `function() -> chunk | nil | nil, err`
--    (nil ends the body; nil, err or false aborts with Aborted), or a
--    `core.buffer` (capability buffer_body: its bytes sent in place, never
--    copied into a Lua string; it does not change until the request is done), with
--    `body_length` its total when known; without it the body goes out with
--    `Transfer-Encoding: chunked`. A body that is not `body_length` long
--    fails with BodyLengthMismatch;
--  * `sink`: nil (the body is collected into `res.body`), a function
--    `sink(chunk) -> true | false | nil, err` (false or nil, err aborts with
--    Aborted; returning nothing goes on), or `{ file = path, offset = 0 }`
--    (byte i of the body is written at offset + i; the file is created if
--    missing and never truncated, so ranges of one object can share one
--    file). A response with status >= 300 never reaches a sink: its body is
--    in `res.body`;
--  * `on_head`: nil or `function(status, headers) -> true | false | nil, err`,
--    called exactly once per request with the final response's status (a
--    number, never 1xx) and its headers (lower-case names, repeats joined
--    with ", ", the table `res.headers` will be), when the head has been
--    read and before the first body byte reaches the sink (or is
--    collected) - for every status, error statuses included. false or
--    nil, err ends the request with Aborted (nothing of the body is read);
--    an error it raises ends it with CallbackError; returning nothing goes
--    on. A request that fails before a whole head arrives never calls it.
--    What it is for: a proxy that must send the store's status and headers
--    on before the body (objstore.openresty.serve_object);
--  * `on_progress`: nil or `function(sent, received) -> true | false | nil,
--    err`, called while the request runs, at most about every 100 ms (curl)
--    or once per body piece moved (ngx), and only when a count changed,
--    with the request body bytes sent and the response body bytes received
--    so far - absolute counts for this request, a body that is resent (a
--    stale pooled connection) starting again from 0; an error body (status
--    >= 300) counts as 0 received. What a transfer shows as moving comes
--    from it, so a retry (a new request) never counts bytes twice. false or
--    nil, err ends the request with Aborted, an error it raises with
--    CallbackError;
--  * `hashes` / `body_hashes`: lists of names among md5, sha1, sha256,
--    crc32, crc32c, crc64ecma, crc64nvme, computed over the response body /
--    the request body as sent;
--  * `timeout` (seconds, the whole request; overrides the transport's);
--  * `max_speed` (bytes per second, a whole number; 0 or nil: no limit): the
--    request body is sent and the response body read no faster, on average
--    over the request (the transport waits: nothing above it sleeps);
--  * `max_body` (bytes, a whole number; 0 or nil: no cap): a collected
--    (`sink` nil) response body with status < 300 that would grow past it
--    ends the request with ResponseTooLarge (not retryable: the server would
--    send the same again) as soon as it does, so an endless body costs at
--    most `max_body` of memory.
--
-- **Bounds on what a server sends** (every transport): the status line and
-- headers at most 1 MiB in all, each line read with that bound (a line that
-- never ends is a ProtocolError once over it, never an unbounded buffer);
-- a chunk-size line at most 64 KiB; an error body (status >= 300) kept up to
-- 1 MiB, the rest read and dropped.
--
-- **Result**: `{ status, headers, body, bytes, sent, hashes, body_hashes }`:
-- `headers` has lower-case names, repeated headers joined with ", "; `body`
-- is the collected body (always for status >= 300); `bytes` counts the
-- response body bytes received, `sent` the request body bytes sent;
-- `hashes.md5` etc. are raw digests, CRCs raw big-endian bytes. A
-- transport may add fields of its own (curl: total_time, connects).
--
-- **Errors** are returned, never raised: `nil, err`, `err` a table
-- `{ code, message, retryable, ... }` with the one shared error metatable
-- (`require("objstore.core").error_mt`; `transport.error` and
-- `require("objstore.errors").new` set it). `code` is a key of `CODES` and
-- `retryable` is its value there unless `t.retryable_exceptions` says why
-- not. An HTTP error status is a result, not an error. A connection refused
-- is ConnectFailed; a request that outlives its timeout is Timeout.
-- @module objstore.transport

local core = require "objstore.core"
local errors = require "objstore.errors"

local type, pairs, tostring, pcall = type, pairs, tostring, pcall

local _M = { _VERSION = core._VERSION }

--- Every transport error code, with whether it is worth another attempt by
-- default: the C core's table (`core.http.errors`, from the X-macro in
-- csrc/os_http.h), the one list of them; Lua transports use the same codes.
local CODES = {}
for k, v in pairs(core.http.errors) do
  if k ~= "OK" then CODES[k] = v and true or false end
end
_M.CODES = CODES

--- The names of the optional capabilities.
_M.CAPABILITIES = { "hashes", "body_hashes", "file_body", "file_sink", "run", "buffer_body", "progress" }

--- A transport error with `code`'s retryable default, for transports written
-- in Lua: `{ code, message, retryable, ... }` with the shared metatable.
-- `extra` fields are copied in (its `retryable` overrides the default).
-- Raises on an unknown code: that is a bug in the transport.
function _M.error(code, message, extra)
  if type(code) ~= "string" or CODES[code] == nil then
    errors.argument("transport.error", 1, "code", "unknown transport error code " .. tostring(code))
  end
  local e = { code = code, message = message ~= nil and tostring(message) or code, retryable = CODES[code] }
  if extra ~= nil then
    if type(extra) ~= "table" then
      errors.argument("transport.error", 3, "extra", "table expected, " .. errors.got(extra))
    end
    for k, v in pairs(extra) do e[k] = v end
  end
  return errors.new(e)
end

local function misuse(problem)
  errors.argument("transport.check", 1, "transport", problem)
end

--- Raises unless `t` has the shape of a transport: a `request` method;
-- `run`, `sleep`, `close` and `semaphore`, when present, methods; `capabilities`, when
-- present, a table of booleans whose `run` matches the presence of `t.run`.
-- @return t
function _M.check(t)
  local tt = type(t)
  if tt ~= "table" and tt ~= "userdata" then misuse("table expected, " .. errors.got(t)) end
  -- A userdata without __index raises when indexed.
  local indexable, request = pcall(function() return t.request end)
  if not indexable then misuse("cannot be indexed: " .. tostring(request)) end
  if type(request) ~= "function" then
    misuse("request must be a method, got " .. type(request))
  end
  local run = t.run
  for _, m in pairs{ "run", "sleep", "close", "semaphore" } do
    local v = t[m]
    if v ~= nil and type(v) ~= "function" then misuse(m .. " must be a method, got " .. type(v)) end
  end
  local caps = t.capabilities
  if caps ~= nil then
    if type(caps) ~= "table" then misuse("capabilities must be a table, got " .. type(caps)) end
    for k, v in pairs(caps) do
      if type(v) ~= "boolean" then
        misuse("capabilities." .. tostring(k) .. " must be a boolean, got " .. type(v))
      end
    end
    if caps.run ~= nil and caps.run ~= (run ~= nil) then
      misuse("capabilities.run is " .. tostring(caps.run) .. " but run is " .. (run and "present" or "missing"))
    end
  end
  return t
end

--- Raises unless `t` can be a transport (argument #1 of `fn`).
local function need_transport(fn, t)
  if type(t) ~= "table" then errors.argument("transport." .. fn, 1, "t", "must be a transport, " .. errors.got(t)) end
end

--- What `t` can do: a new table with every name of `CAPABILITIES` set to a
-- boolean (missing ones false; `run` from the presence of `t.run`).
function _M.capabilities(t)
  need_transport("capabilities", t)
  local caps = type(t.capabilities) == "table" and t.capabilities or {}
  local out = {}
  for _, name in pairs(_M.CAPABILITIES) do out[name] = caps[name] == true end
  out.run = type(t.run) == "function"
  return out
end

--- The sleep function for backoff between attempts on `t`: `t:sleep` when
-- it has one, else `core.time.sleep`, which blocks the whole process. Only
-- this module may pick that blocking default: code above the transport
-- takes its sleeper from here (or from the caller), never from core.time, so
-- that inside OpenResty a cosocket transport's ngx.sleep is used.
function _M.sleeper(t)
  need_transport("sleeper", t)
  if type(t.sleep) == "function" then
    return function(seconds) return t:sleep(seconds) end
  end
  return core.time.sleep
end

--- The run function for `t`: `run(source, on_done, n)` as `t:run`. A
-- transport without `run` gets the same pull-model loop one request at a
-- time (`n` is then ignored).
function _M.runner(t)
  need_transport("runner", t)
  if type(t.run) == "function" then
    return function(source, on_done, n) return t:run(source, on_done, n) end
  end
  return function(source, on_done)
    while true do
      local req = source()
      if req == nil then return true end
      local res, err = t:request(req)
      on_done(req, res, err)
    end
  end
end

--- The nginx phases where cosockets work (objstore.transport.auto picks
-- the cosocket transport in these, and the cosocket transport refuses
-- the others).
_M.COSOCKET_PHASES = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
  ssl_session_fetch = true, ssl_client_hello = true, preread = true, server_rewrite = true }

return _M
