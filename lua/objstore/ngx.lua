--- Helpers for objstore inside OpenResty handlers.
--
--    local onx = require "objstore.ngx"
--    onx.defer(function() c:put_object("logs", key, line) end)  -- from log_by_lua
--    local r, err = onx.put_request_body(c, "bucket", "key", { threshold = 16 * 1024 * 1024 })
--    c:get_object("bucket", "key", { sink = onx.response_sink() })
--
-- * `defer(fn, ...)`: runs `fn(...)` in an `ngx.timer.at(0, ...)` timer,
--   a phase with cosockets, for the phases without them (log,
--   header_filter, body_filter). An error raised by `fn` is logged
--   (ngx.ERR), never lost silently. Returns true or nil, err.
-- * `request_body_reader(chunk)`: the client's request body as a reader
--   `function() -> chunk | nil | nil, err` over `ngx.req.socket()`, read in
--   pieces of `chunk` bytes (64 KiB) as they are asked for, never whole;
--   and its length (Content-Length). A body nginx cannot hand out as a
--   socket - chunked (no Content-Length) or HTTP/2 - gives nil,
--   err{code = "BodyNotStreamable"}; a client that goes away while its
--   body is read makes the reader return nil, err (the upload above it
--   then fails and aborts: see put_request_body).
-- * `spooled_request_body()`: the fallback for those bodies: nginx reads
--   the whole body itself (`ngx.req.read_body`, non-blocking) into its
--   client_body temporary file - bounded by `client_max_body_size` (413
--   beyond it) - or memory when it fits `client_body_buffer_size`; returns
--   a body for put_object/upload ({ path = file } or a string) and its
--   length.
-- * `put_request_body(c, bucket, key, opts)`: the request body into the
--   store: one PutObject streamed from the socket up to `opts.threshold`
--   bytes (default 16 MiB), a multipart upload above it (`upload_stream`,
--   memory about concurrency x part_size), an aborted multipart upload when
--   the client disconnects or the store fails - no partial object and no
--   upload left behind (with `lua_check_client_abort on` too: it registers
--   an ngx.on_abort handler, so that nginx does not kill the upload
--   midway, and stops at the next read; a caller that registered its own
--   keeps it, and must not end the request there); chunked and HTTP/2
--   bodies are spooled first
--   (spooled_request_body). Other opts (part_size, concurrency,
--   content_type, ...) go to put_object/upload_stream/upload_file.
--   Returns the result (with `spooled = true` when spooled) or nil, err.
-- * `response_sink(flush_every)`: a sink that sends each chunk to the
--   client as it arrives (`ngx.print`) and, every `flush_every` bytes
--   (1 MiB), waits until the client took them (`ngx.flush(true)`, which
--   yields: the worker serves others meanwhile), so a slow client holds
--   about that much memory; it stops the download when the client is gone.
--
-- Nothing here runs at `require`; every function needs a request context
-- (defer: any phase where timers may be created).
-- @module objstore.ngx
local errors = require "objstore.errors"
local core = require "objstore.core"

local type, rawget, tostring, tonumber, pcall, select, pairs = type, rawget, tostring, tonumber, pcall, select, pairs
local min = math.min
local unpack = rawget(_G, "unpack") or table.unpack
local _G = _G

local _M = { _VERSION = core._VERSION }

local CHUNK = 64 * 1024
_M.DEFAULT_THRESHOLD = 16 * 1024 * 1024
-- response_sink waits for the client every this many bytes: nginx holds
-- at most about this much of a download for a slow client.
local FLUSH_EVERY = 1024 * 1024

local function ngx_api(fname)
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    errors.argument("ngx." .. fname, nil, nil, "needs OpenResty's ngx (call it inside nginx)", 3)
  end
  return ngx
end

function _M.defer(fn, ...)
  local ngx = ngx_api("defer")
  if type(fn) ~= "function" then errors.argument("ngx.defer", 1, "fn", "function expected, " .. errors.got(fn)) end
  local n, args = select("#", ...), { ... }
  return ngx.timer.at(0, function(premature)
    if premature then return end
    local ok, err = pcall(fn, unpack(args, 1, n))
    if not ok then ngx.log(ngx.ERR, "objstore.ngx.defer: the deferred function raised: ", tostring(err)) end
  end)
end

local function not_streamable(why)
  return errors.new{ code = "BodyNotStreamable", retryable = false,
    message = "the request body cannot be streamed from the socket: " .. tostring(why) }
end

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
  return function()
    if left <= 0 then return nil end
    local data, err, partial = sock:receive(min(chunk, left))
    if not data then
      return nil, "the client's request body ended after " .. (length - left + #(partial or ""))
        .. " of " .. length .. " bytes: " .. tostring(err)
    end
    left = left - #data
    return data
  end, length
end

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

local PUT_ONLY = { threshold = true, part_size = true, concurrency = true, leave_parts_on_error = true,
  part_headers = true, progress = true }

function _M.put_request_body(c, bucket, key, opts)
  ngx_api("put_request_body")
  opts = opts or {}
  if type(opts) ~= "table" then
    errors.argument("ngx.put_request_body", 4, "opts", "table expected, " .. errors.got(opts))
  end
  local threshold = opts.threshold or _M.DEFAULT_THRESHOLD
  local put_opts, stream_opts = {}, {}
  for k, v in pairs(opts) do
    if k ~= "threshold" then stream_opts[k] = v end
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
    if type(body) == "table" and size > threshold then
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
  if length <= threshold then
    put_opts.length = length
    put_opts.content_md5 = false
    return c:put_object(bucket, key, reader, put_opts)
  end
  return c:upload_stream(bucket, key, reader, stream_opts)
end

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
