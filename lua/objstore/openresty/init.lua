--- Helpers for objstore inside OpenResty handlers.
--
--    local onx = require "objstore.openresty"
--    onx.defer(function() c:put_object("logs", key, line) end)  -- from log_by_lua
--    local r, err = onx.put_request_body(c, "bucket", "key", { multipart_threshold = 16 * 1024 * 1024 })
--    local r, err = onx.serve_object(c, "bucket", "key")   -- GET/HEAD /files/<key>
--
-- Each function's comment below says what it does (docs/reference.md
-- gathers them).
--
-- Nothing here runs at `require`; every function needs a request context
-- (defer: any phase where timers may be created).
-- @module objstore.openresty
local errors = require "objstore.errors"
local core = require "objstore.core"
local defaults = require "objstore.transfer.defaults"

local type, rawget, tostring, tonumber, pcall, select, pairs, ipairs =
  type, rawget, tostring, tonumber, pcall, select, pairs, ipairs
local min = math.min
local unpack = rawget(_G, "unpack") or table.unpack
local _G = _G

local _M = { _VERSION = core._VERSION }

local CHUNK = 64 * 1024
_M.DEFAULT_THRESHOLD = defaults.REQUEST_BODY_THRESHOLD
-- response_sink waits for the client every this many bytes: nginx holds
-- at most about this much of a download for a slow client.
local FLUSH_EVERY = 1024 * 1024
-- request_body_reader lets the worker's other requests in every this
-- many seconds of reading.
local BUSY = 0.01

local function ngx_api(fname)
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    errors.argument("openresty." .. fname, nil, nil, "needs OpenResty's ngx (call it inside nginx)")
  end
  return ngx
end

--- defer(fn, ...) -> true | nil, err
-- Runs `fn(...)` in an `ngx.timer.at(0, ...)` timer, a phase with cosockets,
-- for the phases without them (log, header_filter, body_filter). An error
-- raised by `fn` is logged (ngx.ERR), never lost silently. Returns true or
-- nil, err.
function _M.defer(fn, ...)
  local ngx = ngx_api("defer")
  if type(fn) ~= "function" then
    errors.argument("openresty.defer", 1, "fn", "function expected, " .. errors.got(fn))
  end
  local n, args = select("#", ...), { ... }
  return ngx.timer.at(0, function(premature)
    if premature then return end
    local ok, err = pcall(fn, unpack(args, 1, n))
    if not ok then ngx.log(ngx.ERR, "objstore.openresty.defer: the deferred function raised: ", tostring(err)) end
  end)
end

local function not_streamable(why)
  return errors.new{ code = "BodyNotStreamable", retryable = false,
    message = "the request body cannot be streamed from the socket: " .. tostring(why) }
end

--- request_body_reader(chunk) -> reader, length | nil, err
-- The client's request body as a reader `function() -> chunk | nil | nil,
-- err` over `ngx.req.socket()`, read in pieces of `chunk` bytes (64 KiB) as
-- they are asked for, never whole, letting the worker's other requests in
-- every 10 ms (a fast client's data is always there: its receives never
-- wait); and its length (Content-Length). A body
-- nginx cannot hand out as a socket - chunked (no Content-Length) or HTTP/2
-- - gives nil, err{code = "BodyNotStreamable"}; a client that goes away
-- while its body is read makes the reader return nil, err (the upload above
-- it then fails and aborts: see put_request_body).
function _M.request_body_reader(chunk)
  local ngx = ngx_api("request_body_reader")
  chunk = chunk or CHUNK
  local length = tonumber(ngx.var.http_content_length)
  if ngx.req.http_version() >= 2 then return nil, not_streamable("HTTP/2") end
  if not length then
    if ngx.var.http_transfer_encoding then return nil, not_streamable("chunked (no Content-Length)") end
    length = 0
  end
  if length == 0 then
    local done = false
    return function()
      if done then return nil end
      done = true
      return nil
    end, 0
  end
  local sock, serr = ngx.req.socket()
  if not sock then return nil, not_streamable(serr) end
  local left = length
  local monotonic = core.time.monotonic
  local busy_since = monotonic()
  return function()
    if left <= 0 then return nil end
    -- A receive yields only when the socket has no data: from a fast
    -- client it never does, and the whole body (and a part's copying and
    -- hashing above) would be read in one go, the worker serving no one
    -- else. Every BUSY seconds the other requests get a turn: a 1 ms
    -- sleep (ngx.sleep(0) needs OpenResty's delayed-events patch to reach
    -- the event loop; Debian's nginx has none).
    if monotonic() - busy_since >= BUSY then
      ngx.sleep(0.001)
      busy_since = monotonic()
    end
    local data, err, partial = sock:receive(min(chunk, left))
    if not data then
      return nil, "the client's request body ended after " .. (length - left + #(partial or ""))
        .. " of " .. length .. " bytes: " .. tostring(err)
    end
    left = left - #data
    return data
  end, length
end

--- spooled_request_body() -> body, length | nil, err
-- The fallback for those bodies: nginx reads the whole body itself
-- (`ngx.req.read_body`, non-blocking) into its client_body temporary file -
-- bounded by `client_max_body_size` (413 beyond it) - or memory when it fits
-- `client_body_buffer_size`; returns a body for put_object/upload ({ path =
-- file } or a string) and its length.
function _M.spooled_request_body()
  local ngx = ngx_api("spooled_request_body")
  local ok, err = pcall(ngx.req.read_body)
  if not ok then return nil, errors.new{ code = "BodyReadError", message = tostring(err), retryable = false } end
  local data = ngx.req.get_body_data()
  if data then return data, #data end
  local file = ngx.req.get_body_file()
  if not file then return "", 0 end
  local lfs = require "lfs"
  local size = lfs.attributes(file, "size")
  if not size then
    return nil, errors.new{ code = "BodyReadError", message = "the spooled body file is gone", retryable = false }
  end
  return { path = file }, size
end

--- With `lua_check_client_abort on`, nginx ends a request whose client
-- closed the connection at once - every light thread of it killed where it
-- stands, a multipart upload left behind - unless the request registered
-- an ngx.on_abort handler. put_request_body registers one that only takes
-- note: the upload then stops at its next read of the body and aborts
-- itself. Off (or a handler already registered by the caller, who then
-- decides): nothing to watch; a disconnect shows as a failed read.
local function watch_abort(ngx)
  local state = { aborted = false }
  pcall(ngx.on_abort, function() state.aborted = true end)
  return state
end

local function client_gone()
  return errors.new{ code = "ClientAborted", retryable = false,
    message = "the client closed the connection before its request body was read" }
end

local PUT_ONLY = { multipart_threshold = true, part_size = true, concurrency = true, leave_parts_on_error = true,
  part_headers = true, progress = true }

--- put_request_body(c, bucket, key, opts) -> result | nil, err
-- The request body into the store: one PutObject streamed from the socket up
-- below `opts.multipart_threshold` bytes (default 16 MiB), a multipart upload from it on
-- (`upload_stream`, memory about concurrency x part_size), an aborted
-- multipart upload when the client disconnects or the store fails - no
-- partial object and no upload left behind (with `lua_check_client_abort on`
-- too: it registers an ngx.on_abort handler, so that nginx does not kill the
-- upload midway, and stops at the next read; a caller that registered its
-- own keeps it, and must not end the request there); chunked and HTTP/2
-- bodies are spooled first (spooled_request_body). Other opts (part_size,
-- concurrency, content_type, ...) go to
-- put_object/upload_stream/upload_file. Returns the result (with `spooled =
-- true` when spooled) or nil, err.
function _M.put_request_body(c, bucket, key, opts)
  ngx_api("put_request_body")
  opts = opts or {}
  if type(opts) ~= "table" then
    errors.argument("openresty.put_request_body", 4, "opts", "must be a table, " .. errors.got(opts))
  end
  local threshold = opts.multipart_threshold or _M.DEFAULT_THRESHOLD
  local put_opts, stream_opts = {}, {}
  for k, v in pairs(opts) do
    if k ~= "multipart_threshold" then stream_opts[k] = v end
    if not PUT_ONLY[k] then put_opts[k] = v end
  end
  local ngx = rawget(_G, "ngx")
  local gone = watch_abort(ngx)
  local reader, length = _M.request_body_reader()
  if not reader then
    if length.code ~= "BodyNotStreamable" then return nil, length end
    local body, size = _M.spooled_request_body()
    if not body then return nil, size end
    if gone.aborted then return nil, client_gone() end
    local r, err
    if type(body) == "table" and size >= threshold then
      -- The body is all in the file, but a client gone meanwhile stops the
      -- upload after its current parts (and upload_file aborts it).
      local on_part = stream_opts.on_part
      stream_opts.on_part = function(...)
        if gone.aborted then return false end
        if on_part then return on_part(...) end
      end
      r, err = c:upload_file(bucket, key, body.path, stream_opts)
      if not r and gone.aborted then err = client_gone() end
    else
      r, err = c:put_object(bucket, key, body, put_opts)
    end
    if r then r.spooled = true end
    return r, err
  end
  local inner = reader
  reader = function()
    -- Asked for more after the client went: the upload stops here and is
    -- aborted (a multipart one by upload_stream), nothing is left.
    if gone.aborted then return nil, client_gone() end
    return inner()
  end
  if length < threshold then
    put_opts.length = length
    put_opts.content_md5 = false
    return c:put_object(bucket, key, reader, put_opts)
  end
  return c:upload_stream(bucket, key, reader, stream_opts)
end

-- The store's response headers sent on to the client, by their lower-case
-- name and the name nginx gets.
local PASSED = {
  { "content-length", "Content-Length" }, { "content-type", "Content-Type" }, { "etag", "ETag" },
  { "last-modified", "Last-Modified" }, { "content-range", "Content-Range" },
  { "accept-ranges", "Accept-Ranges" }, { "cache-control", "Cache-Control" },
  { "content-disposition", "Content-Disposition" }, { "content-encoding", "Content-Encoding" },
  { "content-language", "Content-Language" }, { "expires", "Expires" },
}
-- The client's request headers forwarded to the store, as get_object options.
local FORWARDED = { range = "http_range", if_match = "http_if_match", if_none_match = "http_if_none_match",
  if_modified_since = "http_if_modified_since", if_unmodified_since = "http_if_unmodified_since" }
-- Statuses whose head (and body) serve_object sends on.
local SERVED = { [200] = true, [206] = true, [304] = true }

--- serve_object(c, bucket, key, opts) -> info | nil, err
-- Answers the current GET or HEAD with the object, in one request to the
-- store (no HEAD first): the client's Range, If-Match, If-None-Match,
-- If-Modified-Since and If-Unmodified-Since go to the store as they are, and
-- its answer's status (200, 206, 304) and Content-Length, Content-Type,
-- ETag, Last-Modified, Content-Range, Accept-Ranges (and Cache-Control,
-- Content-Disposition, Content-Encoding, Content-Language, Expires) are sent
-- on from its head (the transport's `on_head`) before the body, which
-- streams through `response_sink`. Returns the object's info (`status` the
-- one sent) once the body is out; nil, err when the store refused (404, 412,
-- 416, ...) or failed before the head was sent - nothing is sent then, the
-- caller answers. A failure after the head went out (the store closes
-- mid-body, a timeout, the client gone) is logged (ngx.ERR, or ngx.INFO for
-- a client gone) and ends the request with ngx.exit(ngx.ERROR): nginx resets
-- the connection, so the client sees a failed transfer, never a short body
-- as a complete one. `opts.flush_every` goes to response_sink,
-- `opts.log_prefix` starts the log line; other opts (version_id,
-- sse_customer_key, timeout of the client...) go to get_object /
-- head_object. `opts.on_head(status, headers)` is called with the store's
-- head before it is sent on, to add headers of the caller's (ngx.header).
-- A failure before the head went out (connection refused, a
-- 503, a timeout before the head) is retried by the client's retry policy
-- like any request; once the head went out, never (the store's answer is
-- passed on as is).
function _M.serve_object(c, bucket, key, opts)
  local ngx = ngx_api("serve_object")
  if opts ~= nil and type(opts) ~= "table" then
    errors.argument("openresty.serve_object", 4, "opts", "must be a table, " .. errors.got(opts))
  end
  local method = ngx.req.get_method()
  if method ~= "GET" and method ~= "HEAD" then
    errors.argument("openresty.serve_object", nil, nil, "serves GET and HEAD requests, not " .. tostring(method))
  end
  local gopts, flush_every, prefix, on_head = {}, nil, "objstore.openresty.serve_object: ", nil
  for k, v in pairs(opts or {}) do
    if k == "flush_every" then flush_every = v
    elseif k == "on_head" then on_head = v
    elseif k == "log_prefix" then prefix = tostring(v)
    else gopts[k] = v end
  end
  local var = ngx.var
  for opt, name in pairs(FORWARDED) do
    local v = var[name]
    if v ~= nil and v ~= "" and gopts[opt] == nil then gopts[opt] = v end
  end
  local sent, status = false, nil
  gopts.on_head = function(st, headers)
    if not SERVED[st] then return true end -- an error: the caller answers
    status = st
    ngx.status = st
    for _, p in ipairs(PASSED) do
      local v = headers[p[1]]
      if v ~= nil then ngx.header[p[2]] = v end
    end
    if st == 304 then ngx.header["Content-Length"] = nil end
    if on_head then on_head(st, headers) end
    sent = true
    local ok, err = ngx.send_headers()
    if not ok then return nil, "the client is gone: " .. tostring(err) end
    return true
  end
  -- Retried (the pipeline's one loop) while nothing went to the client.
  gopts.sink_retryable = function() return not sent end
  local res, err
  if method == "HEAD" then
    gopts.range, gopts.sink_retryable = nil, nil -- HeadObject answers the whole object's head
    res, err = c:head_object(bucket, key, gopts)
  else
    local inner = _M.response_sink(flush_every)
    gopts.sink = inner
    res, err = c:get_object(bucket, key, gopts)
  end
  if res then
    res.status = status
    return res
  end
  if sent and status == 304 and err and err.status == 304 then
    -- Not modified: the head (without a body) is the whole answer.
    return { status = 304, etag = ngx.header["ETag"] }
  end
  if not sent then return nil, err end
  -- The head is out: only a reset connection tells the client the body is
  -- incomplete (a clean end would pass a short body off as the object).
  local gone = err and type(err.message) == "string" and err.message:find("the client is gone", 1, true)
  ngx.log(gone and ngx.INFO or ngx.ERR, prefix, "GET ", tostring(bucket), "/", tostring(key), " failed after ",
    "the response head was sent (", tostring(status), "): ", tostring(err and err.code), ": ",
    tostring(err and err.message), "; the connection is reset")
  return ngx.exit(ngx.ERROR)
end

--- response_sink(flush_every) -> sink
-- A sink that sends each chunk to the client as it arrives (`ngx.print`)
-- and, every `flush_every` bytes (1 MiB), waits until the client took them
-- (`ngx.flush(true)`, which yields: the worker serves others meanwhile), so
-- a slow client holds about that much memory; it stops the download when the
-- client is gone.
function _M.response_sink(flush_every)
  local ngx = ngx_api("response_sink")
  flush_every = flush_every or FLUSH_EVERY
  local pending = 0
  return function(chunk)
    local ok, err = ngx.print(chunk)
    if not ok then return nil, "the client is gone: " .. tostring(err) end
    pending = pending + #chunk
    if pending >= flush_every then
      pending = 0
      ok, err = ngx.flush(true)
      if not ok then return nil, "the client is gone: " .. tostring(err) end
    end
    return true
  end
end

return _M
