--- HTTP transport on OpenResty cosockets (`ngx.socket.tcp`), for code that
-- runs inside nginx (request phases that allow cosockets, and timers).
--
--    local ngx_transport = require "objstore.transport.ngx"
--    local t = assert(ngx_transport.new{ connect_timeout = 5, max_connections = 16 })
--    local res, err = t:request{ method = "GET", url = url, sink = { file = path } }
--    t:run(source, on_done, 8)              -- light threads (ngx.thread.spawn)
--    t:close()
--
-- It meets the transport contract of `objstore.transport` (the same
-- requests, results and error codes as `objstore.transport.curl`) with every
-- capability: digests are computed with `objstore.checksum` as the bytes
-- stream, file ranges are read and file sinks written in 64 KiB pieces.
-- `t:sleep(s)` is `ngx.sleep` (it yields). Nothing is done at `require`:
-- the module can be loaded anywhere; requests need a cosocket context.
--
-- **Options** of `new` (all optional; an unknown name raises): the one
-- schema of every transport (`objstore.transport.options`):
-- `connect_timeout`, `send_timeout`, `read_timeout` (seconds for each
-- connect, each send and each receive; defaults 10, 60, 60), `timeout` (the
-- whole request, seconds, default 0 = none; a request's own `timeout`
-- overrides it), `max_connections` (idle connections kept per endpoint in
-- the cosocket pool, default 16; also the default concurrency of `run`),
-- `tls = { insecure = false, server_name = nil, min_version = nil }`
-- (verification is on unless `insecure = true`; it needs
-- `lua_ssl_trusted_certificate` in the nginx configuration, and
-- `tls.ca_file` / `tls.ca_path` are refused for that reason;
-- `server_name` overrides the SNI name, by default the URL's host when it
-- is a name, and is the name the certificate must hold; for an IP address
-- without one the certificate must hold that address as an IP SAN;
-- `min_version` "1.0" to "1.3" refuses a server that agrees on less — the
-- protocols offered are nginx's lua_ssl_protocols), `proxy` ("http://host:port": plain requests go to it with the
-- absolute URL, https ones through CONNECT; the *_proxy environment
-- variables are not read), `user_agent` (default "objstore/<version>").
-- Its own: `keepalive_timeout` (seconds an idle connection is kept, default
-- 20: below the usual server idle timeouts).
--
-- **Names need an nginx `resolver`.** Cosockets resolve host names only
-- through the `resolver` directive of the nginx configuration; without it
-- a URL with a host name fails with ResolveFailed. An IP address
-- (127.0.0.1, as the tests use) needs none.
--
-- **Connections** are kept in cosocket pools of this transport only (the
-- pool name is made of this transport's id, host, port, SNI name, the TLS
-- verify setting and the proxy). A connection goes back to its pool only
-- after its response was read to the end, never after an error, a timeout,
-- an aborted transfer, a close-delimited body, `Connection: close`, or an
-- error status (>= 300) answered to a request that had a body (a server
-- may have answered without reading it). `close()` ends the idle
-- connections this transport left in its pools (in a cosocket context;
-- elsewhere they end with their keepalive timeout).
--
-- **Limits**: the request body is sent whole before the answer is read (an
-- early answer to an upload is seen only then, or the send times out); file
-- bodies and sinks use io.open, so their 64 KiB reads and writes block the
-- worker briefly (disk, not network); no TLS session reuse across
-- connections; no HTTP/2.
--
-- **Request**: `method` ("GET"), `url` (required, http or https, sent as
-- given), `headers` (`{ name = value }` or `{ {name, value}, ... }`; a
-- Host header given replaces the one from the URL; no `Expect` is sent),
-- `body` (string, `{ file = path, offset = 0, length = rest }`, or a reader
-- `function() -> chunk | nil | nil, err`), `body_length` (a reader's total,
-- or a Content-Length header given; without either the body is sent
-- chunked), `sink` (nil: collected into
-- `res.body`; `function(chunk) -> true | false | nil, err`; `{ file = path,
-- offset = 0 }`, written at offset + position without truncating, created
-- when missing), `on_head` (`function(status, headers)`, called once when the
-- head is read, before the body: see objstore.transport), `on_progress`
-- (`function(sent, received)` after a body piece moved, at most every
-- 100 ms), `hashes`, `body_hashes`, `timeout`, `max_speed` (the sum
-- of body bytes sent and received paced to it), `max_body` (a collected
-- 2xx body past it ends with ResponseTooLarge before the bytes are kept).
-- Misuse raises, naming the field. Error responses (status >= 300) never
-- reach a sink: their body (up to 1 MiB) is in `res.body`. Every line of
-- an answer (status, headers, chunk sizes, trailers) is read with a bound
-- (1 MiB for the head, 64 KiB for a chunked framing line), never with an
-- unbounded receive("*l").
--
-- **Result**: `{ status, headers, body, bytes, sent, hashes, body_hashes,
-- connects }` (`connects`: 1 when this request opened a new connection, 0
-- when it reused one). **Errors** are returned, never raised, made by
-- `objstore.transport.error` with the codes of `transport.CODES`:
-- ConnectFailed (refused), ResolveFailed (no resolver, unknown name),
-- Timeout (any cosocket timeout, or the request's `timeout` used up),
-- TLSError (not retryable, except a handshake cut short:
-- `t.retryable_exceptions`), ConnectionReset, BodyTruncated, SendFailed,
-- RecvFailed, ProtocolError (a malformed status line, header or chunk),
-- Aborted, CallbackError (a reader or sink raised), BodyLengthMismatch,
-- LocalFileError, InvalidURL, TransportError (called in a phase without
-- cosockets - init, init_worker, log, header_filter, ... -: the message
-- names objstore.openresty.defer). A stale pooled connection (closed by the
-- server while idle) is replaced by a new one without an error when the
-- body can be sent again (not a reader).
-- @module objstore.transport.ngx

local core = require "objstore.core"
local errors = require "objstore.errors"
local checksum = require "objstore.checksum"
local transport = require "objstore.transport"
local url_mod = require "objstore.url"
local options = require "objstore.transport.options"

local type, pairs, ipairs, tostring, tonumber, pcall, setmetatable, error =
  type, pairs, ipairs, tostring, tonumber, pcall, setmetatable, error
local concat, remove = table.concat, table.remove
local floor, min, max, huge = math.floor, math.min, math.max, math.huge
local monotonic = core.time.monotonic
local format, lower, byte, sub = string.format, string.lower, string.byte, string.sub
local io_open = io.open

local tr_error = transport.error

local _M = { _VERSION = core._VERSION }

local CHUNK = 64 * 1024            -- file reads, response receives
local ERROR_BODY_CAP = 1024 * 1024 -- what of an error response is kept
local HEADER_CAP = 1024 * 1024     -- status line and headers together
local LINE_CAP = 64 * 1024         -- a chunk-size, chunk-end or trailer line
local LINE_PIECE = 8192            -- what one bounded line read asks for at most
local USER_AGENT = "objstore/" .. tostring(core._VERSION)

local Transport = {}
Transport.__index = Transport

--- Codes whose `retryable` can differ from their default in CODES, and why.
local RETRYABLE_EXCEPTIONS = {
  TLSError = "a TLS handshake cut short (connection closed or reset) is a network failure (retryable); "
    .. "a certificate that does not verify is not",
}

local next_id = 0 -- per worker: pools of different transports stay apart

---------------------------------------------------------------------------
-- Misuse

local function misuse(fname, field, problem)
  errors.argument("transport.ngx." .. fname, 1, field, problem)
end

local function check_seconds(fname, field, v, def)
  if v == nil then return def end
  if type(v) ~= "number" or v ~= v or v < 0 then
    misuse(fname, field, "non-negative number of seconds expected, " .. errors.got(v))
  end
  return v
end

local function check_count(fname, field, v, def)
  if v == nil then return def end
  if type(v) ~= "number" or v < 0 or v ~= floor(v) or v == huge then
    misuse(fname, field, "non-negative integer expected, " .. errors.got(v))
  end
  return v
end

-- Options of this transport beyond the schema of objstore.transport.options,
-- and the schema's names it cannot honour.
local OWN = { keepalive_timeout = "number" }
local CANNOT = {
  ["tls.ca_file"] = "is not supported by the cosocket transport: nginx's lua_ssl_trusted_certificate sets the CAs",
  ["tls.ca_path"] = "is not supported by the cosocket transport: nginx's lua_ssl_trusted_certificate sets the CAs",
}
-- tls.min_version -> the protocol number OpenSSL reports (SSL3_VERSION + n).
local TLS_VERSIONS = { ["1.0"] = 0x0301, ["1.1"] = 0x0302, ["1.2"] = 0x0303, ["1.3"] = 0x0304 }

-- Splits an http(s) URL (objstore.url): scheme, host (without brackets),
-- port, target (path and query), authority (for the Host header).
local function parse_url(u)
  local p, why = url_mod.parse(u)
  if not p then return nil, why end
  if p.scheme ~= "http" and p.scheme ~= "https" then return nil, "unsupported scheme " .. p.scheme end
  if p.userinfo then return nil, "user information in URLs is not supported" end
  local target = p.path ~= "" and p.path or "/"
  if p.query then target = target .. "?" .. p.query end
  return { scheme = p.scheme, host = p.host, port = p.port or (p.scheme == "https" and 443 or 80), target = target,
    authority = p.authority }
end

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

-- What the cosocket API does not give Lua about a TLS connection, read from
-- the session sslhandshake returns through LuaJIT's FFI on the libssl and
-- libcrypto nginx is linked with: the peer certificate and the protocol.
local ssl_ffi
local function openssl()
  if ssl_ffi == nil then
    local ok, ffi = pcall(require, "ffi")
    ssl_ffi = false
    if ok then
      -- Another module may have declared them already: that is fine too.
      pcall(ffi.cdef, "void *SSL_SESSION_get0_peer(void *s);")
      pcall(ffi.cdef, "int SSL_SESSION_get_protocol_version(const void *s);")
      pcall(ffi.cdef, "int X509_check_ip_asc(void *x, const char *address, unsigned int flags);")
      local found = pcall(function()
        return ffi.C.SSL_SESSION_get0_peer, ffi.C.X509_check_ip_asc, ffi.C.SSL_SESSION_get_protocol_version
      end)
      if found then ssl_ffi = ffi end
    end
  end
  if not ssl_ffi then return nil, "OpenSSL's functions are not reachable through LuaJIT's FFI" end
  return ssl_ffi
end

-- The session of a handshake, or nil, why.
local function session_of(sess)
  local ffi, why = openssl()
  if not ffi then return nil, why end
  if type(sess) ~= "cdata" or sess == nil then return nil, "the handshake gave no session" end
  return ffi
end

-- The certificate check nginx leaves out for an IP address: given no
-- server name, sslhandshake verifies the chain only, and given the address
-- as the name nginx compares it with DNS names (X509_check_host) and refuses
-- a certificate for that address too. The session sslhandshake returns
-- holds the peer certificate; OpenSSL's X509_check_ip_asc compares it with
-- the address (RFC 6125: IP SANs only), through LuaJIT's FFI on the libssl
-- and libcrypto nginx is linked with.
local function peer_matches_ip(sess, ip)
  local ffi, why = session_of(sess)
  if not ffi then return nil, why end
  local cert = ffi.C.SSL_SESSION_get0_peer(sess)
  if cert == nil then return nil, "the server sent no certificate" end
  if ffi.C.X509_check_ip_asc(cert, ip, 0) == 1 then return true end
  return nil, "certificate does not match " .. ip
end

-- tls.min_version, which lua_ssl_protocols cannot set per connection: the
-- protocol the handshake agreed on is checked before any request byte.
local function protocol_at_least(sess, want, name)
  local ffi, why = session_of(sess)
  if not ffi then return nil, why end
  local v = ffi.C.SSL_SESSION_get_protocol_version(sess)
  if v >= want then return true end
  return nil, string.format("the server agreed on protocol 0x%04x, below the TLS %s asked for (tls.min_version)",
    v, name)
end

--- A new transport. @return transport (never nil: there is nothing to fail)
function _M.new(opts)
  local tls
  opts, tls = options.check("transport.ngx.new", opts, OWN, CANNOT)
  local proxy
  if opts.proxy ~= nil and opts.proxy ~= "" then
    if type(opts.proxy) ~= "string" then
      misuse("new", "opts.proxy", "string expected, " .. errors.got(opts.proxy))
    end
    local p, why = parse_url(opts.proxy)
    if not p or p.scheme ~= "http" then
      misuse("new", "opts.proxy", "http://host:port expected: " .. (why or "https"))
    end
    proxy = p
  end
  local pool_size = opts.max_connections or 16
  next_id = next_id + 1
  return setmetatable({
    id = next_id,
    -- checked by options.check with the other schema names
    connect_timeout = opts.connect_timeout or 10,
    send_timeout = opts.send_timeout or 60,
    read_timeout = opts.read_timeout or 60,
    timeout = opts.timeout or 0,
    keepalive_timeout = check_seconds("new", "opts.keepalive_timeout", opts.keepalive_timeout, 20),
    pool_size = pool_size,
    verify = tls.insecure ~= true,
    server_name = tls.server_name,
    min_version = tls.min_version,
    proxy = proxy,
    user_agent = opts.user_agent or USER_AGENT,
    idle = {}, -- pool name -> connections this transport left idle there
    closed = false,
    retryable_exceptions = RETRYABLE_EXCEPTIONS,
    -- buffer_body: no; objstore.engine.adapt turns a core.buffer into a reader.
    capabilities = { hashes = true, body_hashes = true, file_body = true, file_sink = true, run = true,
      buffer_body = false, progress = true },
  }, Transport)
end

---------------------------------------------------------------------------
-- Request checks

local REQ_FIELDS = {
  method = true, url = true, headers = true, body = true, body_length = true, sink = true,
  hashes = true, body_hashes = true, timeout = true, max_speed = true, max_body = true, on_head = true,
  on_progress = true,
}
local KNOWN_ALG = {}
for _, a in ipairs(checksum.ALGORITHMS) do KNOWN_ALG[a] = true end

local function is_token(s)
  return type(s) == "string" and s ~= "" and not s:find("[^%w!#$%%&'*+%-.^_`|~]")
end

local function check_header(name, value, out)
  if not is_token(name) then misuse("request", "req.headers", "invalid header name '" .. tostring(name) .. "'") end
  local tv = type(value)
  if tv == "number" then value = tostring(value)
  elseif tv ~= "string" then
    misuse("request", "req.headers", "value of '" .. name .. "' must be a string, got " .. tv)
  end
  if value:find("[\r\n%z]") then
    misuse("request", "req.headers", "value of '" .. name .. "' contains CR, LF or NUL")
  end
  out[#out + 1] = { name, value }
end

local function check_digests(field, v)
  if v == nil then return nil end
  if type(v) ~= "table" then misuse("request", "req." .. field, "list of names expected, " .. errors.got(v)) end
  for i = 1, #v do
    local n = v[i]
    if type(n) ~= "string" then
      misuse("request", "req." .. field .. "[" .. i .. "]", "string expected, " .. errors.got(n))
    end
    if not KNOWN_ALG[n] then
      misuse("request", "req." .. field .. "[" .. i .. "]",
        "unknown hash '" .. n .. "' (md5, sha1, sha256, crc32, crc32c, crc64ecma, crc64nvme)")
    end
  end
  if #v == 0 then return nil end
  return v
end

-- The checked request: a new table of what the transfer needs.
local function check_request(req)
  if type(req) ~= "table" then misuse("request", "req", "table expected, " .. errors.got(req)) end
  for k in pairs(req) do
    if not REQ_FIELDS[k] then misuse("request", "req." .. tostring(k), "unknown field") end
  end
  local method = req.method or "GET"
  if not is_token(method) then misuse("request", "req.method", "invalid method '" .. tostring(method) .. "'") end
  local url = req.url
  if type(url) ~= "string" or url == "" then misuse("request", "req.url", "non-empty string expected") end
  local headers = {}
  local h = req.headers
  if h ~= nil then
    if type(h) ~= "table" then misuse("request", "req.headers", "table expected, " .. errors.got(h)) end
    for k, v in pairs(h) do
      if type(k) == "number" then
        if type(v) ~= "table" then
          misuse("request", "req.headers", "list entries must be {name, value}, " .. errors.got(v))
        end
        check_header(v[1], v[2], headers)
      else
        check_header(k, v, headers)
      end
    end
  end
  local body_length = check_count("request", "req.body_length", req.body_length, nil)
  local body, kind = req.body, "none"
  local tb = type(body)
  if body ~= nil and method == "HEAD" then misuse("request", "req.body", "a HEAD request cannot have a body") end
  local file
  if body == nil or body == "" then
    if body_length and body_length > 0 then misuse("request", "req.body_length", "given without a body") end
    body_length = 0
  elseif tb == "string" then
    if body_length and body_length ~= #body then
      misuse("request", "req.body_length", body_length .. " differs from the body string's length " .. #body)
    end
    kind, body_length = "string", #body
  elseif tb == "function" then
    kind = "reader"
    if body_length == nil then
      -- A Content-Length header given with a reader is its body_length.
      for _, hv in ipairs(headers) do
        if lower(hv[1]) == "content-length" then
          body_length = tonumber(hv[2]:match("^%s*(%d+)%s*$"))
          if not body_length then misuse("request", "req.headers", "Content-Length must be a number of bytes") end
        end
      end
    end
  elseif tb == "table" then
    for k in pairs(body) do
      if k ~= "file" and k ~= "offset" and k ~= "length" then
        misuse("request", "req.body." .. tostring(k), "unknown field")
      end
    end
    if type(body.file) ~= "string" then
      misuse("request", "req.body.file", "string expected, " .. errors.got(body.file))
    end
    local length = check_count("request", "req.body.length", body.length, nil)
    if body_length and length and body_length ~= length then
      misuse("request", "req.body_length", "differs from body.length")
    end
    file = { path = body.file, offset = check_count("request", "req.body.offset", body.offset, 0),
      length = length or body_length }
    kind = "file"
  else
    misuse("request", "req.body", "string, table or function expected, " .. errors.got(body))
  end
  local sink, sink_file = req.sink, nil
  if type(sink) == "table" then
    for k in pairs(sink) do
      if k ~= "file" and k ~= "offset" then misuse("request", "req.sink." .. tostring(k), "unknown field") end
    end
    if type(sink.file) ~= "string" then
      misuse("request", "req.sink.file", "string expected, " .. errors.got(sink.file))
    end
    sink_file = { path = sink.file, offset = check_count("request", "req.sink.offset", sink.offset, 0) }
    sink = nil
  elseif sink ~= nil and type(sink) ~= "function" then
    misuse("request", "req.sink", "function or table expected, " .. errors.got(sink))
  end
  if req.on_progress ~= nil and type(req.on_progress) ~= "function" then
    misuse("request", "req.on_progress", "function expected, " .. errors.got(req.on_progress))
  end
  if req.on_head ~= nil and type(req.on_head) ~= "function" then
    misuse("request", "req.on_head", "function expected, " .. errors.got(req.on_head))
  end
  return {
    method = method, url = url, headers = headers, kind = kind, body = body, body_length = body_length,
    file = file, sink = sink, sink_file = sink_file, on_head = req.on_head, on_progress = req.on_progress,
    hashes = check_digests("hashes", req.hashes), body_hashes = check_digests("body_hashes", req.body_hashes),
    timeout = check_seconds("request", "req.timeout", req.timeout, nil),
    max_speed = check_count("request", "req.max_speed", req.max_speed, 0),
    max_body = check_count("request", "req.max_body", req.max_body, 0),
  }
end

---------------------------------------------------------------------------
-- Digests

local function hashers(names)
  if not names then return nil end
  local hs = {}
  for i, n in ipairs(names) do hs[i] = checksum.new(n) end
  return hs
end

local function feed(hs, s)
  if hs then
    for i = 1, #hs do hs[i]:update(s) end
  end
end

local function digests(names, hs)
  if not names then return nil end
  local out = {}
  for i, n in ipairs(names) do out[n] = hs[i]:digest() end
  return out
end

---------------------------------------------------------------------------
-- One transfer

-- The error code of a cosocket failure `e` while doing `what`.
local function sock_error(e, what)
  e = tostring(e)
  if e == "timeout" or e:find("timed out", 1, true) then return tr_error("Timeout", what .. ": timeout") end
  if e == "closed" or e:find("reset", 1, true) or e:find("broken pipe", 1, true) then
    return tr_error("ConnectionReset", what .. ": " .. e)
  end
  return nil, e
end

-- The cosocket timeout (ms) for one operation: `per` seconds (0: none),
-- cut to what is left of the request (`left` ms, or nil without a deadline).
local function op_ms(per, left)
  local ms = per > 0 and per * 1000 or 3600000
  if left and left < ms then ms = left end
  ms = floor(ms)
  if ms < 1 then ms = 1 end
  return ms
end

-- Sets the cosocket timeouts for what is left of the request; false when
-- the request's time is up.
local function arm(self, x)
  local left
  if x.deadline then
    ngx.update_time()
    left = (x.deadline - ngx.now()) * 1000
    if left <= 0 then return false end
  end
  x.sock:settimeouts(op_ms(self.connect_timeout, left), op_ms(self.send_timeout, left),
    op_ms(self.read_timeout, left))
  return true
end

local function timed_out(x)
  return tr_error("Timeout", "the request took longer than its timeout of " .. tostring(x.timeout) .. " s")
end

local function connect_error(e, host, port)
  e = tostring(e)
  local where = host .. ":" .. port
  if e == "timeout" then return tr_error("Timeout", "connect to " .. where .. ": timeout") end
  if e:find("resolve", 1, true) or e:find("resolver", 1, true) then
    return tr_error("ResolveFailed", where .. ": " .. e)
  end
  return tr_error("ConnectFailed", "connect to " .. where .. ": " .. e)
end

-- Reads one line (up to LF; a CR before it is dropped, as receive("*l")
-- does) of at most `cap` bytes, through a receiveuntil iterator asked for at
-- most `piece` (default LINE_PIECE) bytes a call: a line that never ends
-- costs `cap` bytes of memory, never more (receive("*l") buffers without a
-- limit). The deadline is checked between calls, and a call lasts until its
-- `piece` bytes have come, its idle timeout re-armed by each: a caller that
-- must keep to a deadline without a light thread asks for 1. Returns the
-- line, or nil, "too long", or nil, err, partial as receive does.
local function recv_line(self, x, cap, piece)
  local reader = x.line_reader
  if not reader then
    local e
    reader, e = x.sock:receiveuntil("\n")
    if not reader then return nil, e end
    x.line_reader = reader
  end
  local first, parts, n = nil, nil, 0
  while true do
    if not arm(self, x) then return nil, "timeout" end
    local data, e, partial = reader(piece or LINE_PIECE)
    if not data then
      if e then return nil, e, partial end
      break -- the LF
    end
    n = n + #data
    if n > cap then return nil, "too long" end
    if first == nil then
      first = data
    else
      parts = parts or { first }
      parts[#parts + 1] = data
    end
  end
  local line = parts and concat(parts) or first or ""
  if byte(line, -1) == 13 then line = sub(line, 1, -2) end
  return line
end

-- Connects (or reuses a pooled connection): sets x.sock, x.reused.
local function connect(self, x, u)
  local sock = ngx.socket.tcp()
  x.sock = sock
  if not arm(self, x) then return nil, timed_out(x) end
  local sni = self.server_name or (not is_ip(u.host) and u.host) or ""
  local pool = concat({ "objstore", self.id, u.scheme, u.host, u.port, sni, self.verify and "v" or "nv",
    self.min_version or "",
    self.proxy and (self.proxy.host .. ":" .. self.proxy.port) or "" }, ":")
  x.pool = pool
  local chost, cport = u.host, u.port
  if self.proxy then chost, cport = self.proxy.host, self.proxy.port end
  if chost:find(":", 1, true) then chost = "[" .. chost .. "]" end -- IPv6
  local ok, e = sock:connect(chost, cport, { pool = pool, pool_size = self.pool_size })
  if not ok then return nil, connect_error(e, chost, cport) end
  local reused = (sock:getreusedtimes() or 0) > 0
  x.reused = reused
  if reused then
    local n = self.idle[pool]
    if n and n > 0 then self.idle[pool] = n - 1 end
    return true
  end
  if u.scheme == "https" then
    if self.proxy then
      local target = (u.host:find(":", 1, true) and "[" .. u.host .. "]" or u.host) .. ":" .. u.port
      local sent, se = sock:send("CONNECT " .. target .. " HTTP/1.1\r\nHost: " .. target .. "\r\n\r\n")
      if not sent then return nil, (sock_error(se, "proxy CONNECT")) or tr_error("SendFailed", se) end
      local line, re = recv_line(self, x, LINE_CAP)
      if not line then return nil, (sock_error(re, "proxy CONNECT")) or tr_error("RecvFailed", re) end
      local st = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
      if st ~= 200 then return nil, tr_error("ConnectFailed", "proxy CONNECT answered: " .. line:sub(1, 100)) end
      local total = #line
      repeat
        line, re = recv_line(self, x, LINE_CAP)
        if not line then return nil, (sock_error(re, "proxy CONNECT")) or tr_error("RecvFailed", re) end
        total = total + #line
        if total > HEADER_CAP then return nil, tr_error("ProtocolError", "proxy CONNECT headers exceed 1 MiB") end
      until line == ""
      x.line_reader = nil -- the TLS layer reads from here on
    end
    local sess, he = sock:sslhandshake(nil, sni ~= "" and sni or nil, self.verify)
    if not sess then
      he = tostring(he)
      if he == "timeout" then return nil, tr_error("Timeout", "TLS handshake: timeout") end
      local cut = he == "closed" or he:find("reset", 1, true) ~= nil
      return nil, tr_error("TLSError", "TLS handshake with " .. u.host .. ": " .. he,
        cut and { retryable = true } or nil)
    end
    local passed, why = true, nil
    if self.verify and sni == "" then passed, why = peer_matches_ip(sess, u.host) end
    if passed and self.min_version then
      passed, why = protocol_at_least(sess, TLS_VERSIONS[self.min_version], self.min_version)
    end
    if not passed then
      sock:close()
      return nil, tr_error("TLSError", "TLS handshake with " .. u.host .. ": " .. why)
    end
  end
  return true
end

-- A send returns at once while the kernel takes the bytes (a store on
-- the same host drains them as fast as they come): a body's pieces would
-- all go out in one go, the worker serving no one else meanwhile (a 64
-- MiB part: 0.3 s). Every BUSY seconds of a body being sent, the other
-- requests get a turn: ngx.sleep(0.001), a timer, so the event loop runs
-- (ngx.sleep(0) does not reach it on an nginx without OpenResty's
-- delayed-events patch, Debian's). At most 1 ms in BUSY * 1000 ms, and
-- the kernel goes on sending what it holds meanwhile.
local BUSY = 0.01

local function breathe(x)
  local now = monotonic()
  local since = x.busy_since
  if not since then
    x.busy_since = now
  elseif now - since >= BUSY then
    ngx.sleep(0.001)
    x.busy_since = monotonic()
  end
end

local function send(self, x, data, what)
  if not arm(self, x) then return nil, timed_out(x) end
  local n, e = x.sock:send(data)
  if not n then
    local se = sock_error(e, what)
    if se then return nil, se end
    return nil, tr_error("SendFailed", what .. ": " .. tostring(e))
  end
  breathe(x)
  return true
end

-- req.max_speed: after each body piece (sent or received), sleeps until
-- the bytes moved so far fit the rate since the request began. Sleeping
-- is the transport's to do (ngx.sleep yields); the request's timeout
-- still counts.
local function pace(x)
  if x.max_speed == 0 then return true end
  ngx.update_time()
  local ahead = (x.sent + x.bytes) / x.max_speed - (ngx.now() - x.started)
  if ahead > 0 then
    if x.deadline and ngx.now() + ahead >= x.deadline then return false end
    ngx.sleep(ahead)
  end
  return true
end

-- req.on_progress: the body bytes sent and the 2xx body bytes received so
-- far by this attempt (absolute), at most every PROGRESS_S and only when a
-- count moved. true, or nil, err when it raised (CallbackError) or asked
-- to stop (Aborted).
local PROGRESS_S = 0.1
local function progress(x)
  local f = x.on_progress
  if not f then return true end
  local recv = x.error_status and 0 or x.bytes
  if x.sent == x.reported_sent and recv == x.reported_recv then return true end
  local now = ngx.now()
  if now < x.progress_at then return true end
  x.progress_at = now + PROGRESS_S
  x.reported_sent, x.reported_recv = x.sent, recv
  local ok, v, why = pcall(f, x.sent, recv)
  if not ok then return nil, tr_error("CallbackError", "on_progress raised: " .. tostring(v)) end
  if v == false or (v == nil and why ~= nil) then
    return nil, tr_error("Aborted", "on_progress: " .. tostring(why or "returned false"))
  end
  return true
end

-- Calls a reader or sink under pcall: value or nil, err (an error value).
local function call_back(who, f, arg)
  local ok, v, why = pcall(f, arg)
  if not ok then return nil, tr_error("CallbackError", who .. " raised: " .. tostring(v)) end
  return true, v, why
end

-- Sends the request head and body.
local function send_request(self, x, u, r)
  local lines = {}
  local target = u.target
  if self.proxy and u.scheme == "http" then target = u.scheme .. "://" .. u.authority .. u.target end
  lines[1] = r.method .. " " .. target .. " HTTP/1.1"
  local have = {}
  for _, hv in ipairs(r.headers) do have[lower(hv[1])] = true end
  if not have.host then lines[#lines + 1] = "Host: " .. u.authority end
  if not have["user-agent"] then lines[#lines + 1] = "User-Agent: " .. self.user_agent end
  for _, hv in ipairs(r.headers) do
    local n = lower(hv[1])
    -- The framing is this transport's: its own Content-Length or chunked.
    if n ~= "content-length" and n ~= "transfer-encoding" and n ~= "expect" then
      lines[#lines + 1] = hv[1] .. ": " .. hv[2]
    end
  end
  local kind, len = r.kind, r.body_length
  local chunked = kind == "reader" and len == nil
  if chunked then
    lines[#lines + 1] = "Transfer-Encoding: chunked"
  elseif len > 0 or r.method == "PUT" or r.method == "POST" or r.method == "PATCH" then
    lines[#lines + 1] = "Content-Length: " .. format("%d", len)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = ""
  local head = concat(lines, "\r\n")
  local bh = x.body_hashers
  if kind == "none" then
    return send(self, x, head, "sending the request")
  elseif kind == "string" and x.max_speed == 0 then
    feed(bh, r.body)
    local ok, e = send(self, x, { head, r.body }, "sending the request")
    if not ok then return nil, e end
    x.sent = #r.body
    return progress(x)
  end
  local ok, e = send(self, x, head, "sending the request")
  if not ok then return nil, e end
  if kind == "string" then -- paced: in CHUNK pieces
    local body = r.body
    feed(bh, body)
    for i = 1, #body, CHUNK do
      ok, e = send(self, x, body:sub(i, i + CHUNK - 1), "sending the body")
      if not ok then return nil, e end
      x.sent = min(#body, i + CHUNK - 1)
      if not pace(x) then return nil, timed_out(x) end
      ok, e = progress(x)
      if not ok then return nil, e end
    end
    return true
  end
  if kind == "file" then
    local f = x.body_file
    local left = x.file_length
    while left > 0 do
      local c = f:read(min(CHUNK, left))
      if not c or c == "" then
        return nil, tr_error("LocalFileError", r.file.path .. " is shorter than the range being sent")
      end
      left = left - #c
      feed(bh, c)
      ok, e = send(self, x, c, "sending the body")
      if not ok then return nil, e end
      x.sent = x.sent + #c
      if not pace(x) then return nil, timed_out(x) end
      ok, e = progress(x)
      if not ok then return nil, e end
    end
    return true
  end
  -- a reader
  while true do
    local okc, c, why = call_back("reader", r.body)
    if not okc then return nil, c end
    if c == false or (c == nil and why ~= nil) then
      return nil, tr_error("Aborted", "the reader stopped the body: " .. tostring(why or "it returned false"))
    end
    if c == nil then break end
    if type(c) ~= "string" then
      return nil, tr_error("CallbackError", "reader returned " .. type(c) .. " (string or nil expected)")
    end
    if c ~= "" then
      if len and x.sent + #c > len then
        return nil, tr_error("BodyLengthMismatch", "the reader gave more than body_length " .. len .. " bytes")
      end
      feed(bh, c)
      if chunked then
        ok, e = send(self, x, { format("%x\r\n", #c), c, "\r\n" }, "sending the body")
      else
        ok, e = send(self, x, c, "sending the body")
      end
      if not ok then return nil, e end
      x.sent = x.sent + #c
      if not pace(x) then return nil, timed_out(x) end
      ok, e = progress(x)
      if not ok then return nil, e end
    end
  end
  if chunked then return send(self, x, "0\r\n\r\n", "sending the body") end
  if x.sent ~= len then
    return nil, tr_error("BodyLengthMismatch", "the reader gave " .. x.sent .. " of body_length " .. len .. " bytes")
  end
  return true
end

-- Receives with what is left of the time; nil, "timeout" when none is.
local function recv(self, x, pattern)
  if not arm(self, x) then return nil, "timeout" end
  local data, e, partial = x.sock:receive(pattern)
  if data then return data end
  return nil, e, partial
end

local function recv_error(e, what, truncated)
  if e == "timeout" then return tr_error("Timeout", what .. ": timeout") end
  local se = sock_error(e, what)
  if se then
    if truncated and e == "closed" then return tr_error("BodyTruncated", what .. ": the connection closed early") end
    return se
  end
  return tr_error("RecvFailed", what .. ": " .. tostring(e))
end

local HEAD_TOO_LONG = "response headers exceed 1 MiB"

-- Reads the status line and headers (skipping 1xx answers), every line
-- bounded by what is left of HEADER_CAP.
local function read_head(self, x)
  local total = 0
  local blank_ok = true -- one empty line before a status line is tolerated
  while true do
    local line, e = recv_line(self, x, HEADER_CAP - total)
    if not line then
      if e == "too long" then return nil, tr_error("ProtocolError", "status line: " .. HEAD_TOO_LONG) end
      x.nothing_received = true
      return nil, recv_error(e, "reading the status line")
    end
    if line == "" and blank_ok then
      blank_ok = false
      line, e = recv_line(self, x, HEADER_CAP - total)
      if not line then
        if e == "too long" then return nil, tr_error("ProtocolError", "status line: " .. HEAD_TOO_LONG) end
        return nil, recv_error(e, "reading the status line")
      end
    end
    total = total + #line
    local major, minor, status = line:match("^HTTP/(%d)%.(%d) (%d%d%d)")
    if not major then
      return nil, tr_error("ProtocolError", "malformed status line: " .. line:sub(1, 100))
    end
    status = tonumber(status)
    local headers = {}
    local last
    while true do
      local h
      h, e = recv_line(self, x, HEADER_CAP - total)
      if not h then
        if e == "too long" then return nil, tr_error("ProtocolError", HEAD_TOO_LONG) end
        return nil, recv_error(e, "reading the headers")
      end
      total = total + #h
      if total > HEADER_CAP then return nil, tr_error("ProtocolError", HEAD_TOO_LONG) end
      if h == "" then break end
      if h:find("^[ \t]") and last then
        headers[last] = headers[last] .. " " .. h:gsub("^[ \t]+", "")
      else
        local name, value = h:match("^([^:%s]+):[ \t]*(.-)[ \t]*$")
        if not name then return nil, tr_error("ProtocolError", "malformed header line: " .. h:sub(1, 100)) end
        name = lower(name)
        local old = headers[name]
        headers[name] = old and (old .. ", " .. value) or value
        last = name
      end
    end
    if status >= 200 or status < 100 then
      return status, headers, (tonumber(major) * 10 + tonumber(minor))
    end
    -- 1xx: an interim answer, the real one follows
  end
end

-- read_head with the request's deadline enforced from outside: cosocket
-- timeouts are idle timeouts (nginx re-arms them whenever a byte arrives),
-- so a server that trickles its head a byte a second would hold the request
-- far past its timeout (a line is read in LINE_PIECE pieces). The head is
-- read on a light thread (no callback runs there); the caller waits on a
-- semaphore until the deadline, and a little more so that an ordinary
-- timeout answers first, and kills the thread then: nginx closes its
-- cosocket, the answer is Timeout.
local HEAD_GRACE = 0.1
local function new_semaphore(n) return require("ngx.semaphore").new(n) end
local function read_head_within(self, x)
  if not x.deadline then return read_head(self, x) end
  local sema = new_semaphore(0)
  local out
  local okspawn, th = pcall(ngx.thread.spawn, function()
    out = { pcall(read_head, self, x) }
    sema:post(1)
  end)
  if not okspawn then return read_head(self, x) end -- a phase without light threads
  if not out then
    ngx.update_time()
    local ok = sema:wait(max(x.deadline - ngx.now(), 0) + HEAD_GRACE)
    if not ok and not out then
      ngx.thread.kill(th)
      return nil, timed_out(x)
    end
  end
  ngx.thread.wait(th) -- ended: collected now rather than kept until the request ends
  if not out[1] then error(out[2], 0) end
  return out[2], out[3], out[4]
end

-- Delivers a piece of the response body.
local function deliver(x, c)
  local n = #c
  if n == 0 then return true end
  x.bytes = x.bytes + n
  if not pace(x) then return nil, timed_out(x) end
  if x.on_progress and not x.error_status then
    local ok, e = progress(x)
    if not ok then return nil, e end
  end
  feed(x.hashers, c)
  if x.collect then
    if x.max_body > 0 and not x.error_status and x.collected + n > x.max_body then
      -- Before the bytes are kept: an endless body costs max_body at most.
      return nil, tr_error("ResponseTooLarge", "response body over the limit of " .. x.max_body
        .. " bytes for this request")
    end
    if x.collected < ERROR_BODY_CAP or not x.error_status then
      local keep = c
      if x.error_status and x.collected + n > ERROR_BODY_CAP then keep = c:sub(1, ERROR_BODY_CAP - x.collected) end
      x.parts[#x.parts + 1] = keep
      x.collected = x.collected + #keep
    end
    return true
  end
  if x.out_file then
    local ok, e = x.out_file:write(c)
    if not ok then return nil, tr_error("LocalFileError", "writing " .. x.out_path .. ": " .. tostring(e)) end
    return true
  end
  local okc, r, why = call_back("sink", x.sink, c)
  if not okc then return nil, r end
  if r == false or (r == nil and why ~= nil) then
    return nil, tr_error("Aborted", "the sink stopped the body: " .. tostring(why or "it returned false"))
  end
  return true
end

-- Up to n bytes of the body. Under a deadline, whatever has arrived
-- (receiveany), so that the deadline is checked between pieces: receive(n)
-- waits for all n bytes, its idle timeout re-armed by every byte of a
-- server that trickles them.
local function recv_body(self, x, n)
  if not x.deadline then return recv(self, x, n) end
  if not arm(self, x) then return nil, "timeout" end
  return x.sock:receiveany(n)
end

local function read_exact(self, x, n, what)
  while n > 0 do
    local c, e, partial = recv_body(self, x, min(CHUNK, n))
    if not c then
      if partial and partial ~= "" then
        local ok, de = deliver(x, partial)
        if not ok then return nil, de end
      end
      return nil, recv_error(e, what, true)
    end
    n = n - #c
    local ok, de = deliver(x, c)
    if not ok then return nil, de end
  end
  return true
end

-- A line of the chunked framing (LINE_CAP at most) or nil, err. Under a
-- deadline it is read a byte a call, so that a server trickling a line that
-- never ends is stopped at the deadline (8 KiB pieces, re-armed by every
-- byte, would let it run 8192 idle timeouts). The lines are short (a size,
-- an empty line): a few calls a chunk.
local function chunk_line(self, x, what)
  local line, e = recv_line(self, x, LINE_CAP, x.deadline and 1 or nil)
  if line then return line end
  if e == "too long" then return nil, tr_error("ProtocolError", what .. ": a line over 64 KiB") end
  return nil, recv_error(e, what, true)
end

local function read_chunked(self, x)
  local trailers = 0
  while true do
    local line, e = chunk_line(self, x, "reading a chunk size")
    if not line then return nil, e end
    local hex = line:match("^%s*(%x+)")
    if not hex or #hex > 15 then return nil, tr_error("ProtocolError", "malformed chunk size: " .. line:sub(1, 40)) end
    local size = tonumber(hex, 16)
    if size == 0 then
      repeat -- trailers, bounded as headers are
        line, e = chunk_line(self, x, "reading the trailers")
        if not line then return nil, e end
        trailers = trailers + #line
        if trailers > HEADER_CAP then return nil, tr_error("ProtocolError", "trailers exceed 1 MiB") end
      until line == ""
      return true
    end
    local ok, re = read_exact(self, x, size, "reading a chunk")
    if not ok then return nil, re end
    line, e = chunk_line(self, x, "reading a chunk end")
    if not line then return nil, e end
    if line ~= "" then return nil, tr_error("ProtocolError", "chunk not followed by CRLF") end
  end
end

local function read_to_close(self, x)
  while true do
    local c, e
    if arm(self, x) then c, e = x.sock:receiveany(CHUNK) else e = "timeout" end
    if not c then
      if e == "closed" then return true end
      return nil, recv_error(e, "reading the body")
    end
    local ok, de = deliver(x, c)
    if not ok then return nil, de end
  end
end

local function open_body_file(r, x)
  local fb = r.file
  local f, e = io_open(fb.path, "rb")
  if not f then return nil, tr_error("LocalFileError", "cannot open " .. fb.path .. ": " .. tostring(e)) end
  local size = f:seek("end")
  if not size then
    f:close()
    return nil, tr_error("LocalFileError", "cannot read " .. fb.path)
  end
  local length = fb.length or (size - fb.offset)
  if fb.offset + length > size or length < 0 then
    f:close()
    return nil, tr_error("LocalFileError", fb.path .. " (" .. size .. " bytes) is shorter than the range "
      .. fb.offset .. "+" .. length)
  end
  f:seek("set", fb.offset)
  x.body_file, x.file_length = f, length
  r.body_length = length
  return true
end

local function open_sink_file(sf, x)
  local f = io_open(sf.path, "r+b")
  if not f then
    local e
    f, e = io_open(sf.path, "wb")
    if not f then return nil, tr_error("LocalFileError", "cannot open " .. sf.path .. ": " .. tostring(e)) end
  end
  if not f:seek("set", sf.offset) then
    f:close()
    return nil, tr_error("LocalFileError", "cannot seek in " .. sf.path)
  end
  x.out_file, x.out_path = f, sf.path
  return true
end

-- One attempt on one connection. Returns res, or nil, err, retry_on_fresh.
local function attempt(self, r, u, x)
  local ok, e = connect(self, x, u)
  if not ok then return nil, e end
  x.connects = x.reused and 0 or 1
  ok, e = send_request(self, x, u, r)
  if not ok then
    -- A reused connection the server had closed: nothing was sent, try anew.
    local fresh = x.reused and e.code == "ConnectionReset" and r.kind ~= "reader"
    return nil, e, fresh
  end
  local status, headers, version = read_head_within(self, x)
  if not status then
    local fresh = x.reused and x.nothing_received and headers.code == "ConnectionReset" and r.kind ~= "reader"
    return nil, headers, fresh
  end
  if r.on_head then
    -- The head is complete, no body byte has been read: the caller's turn.
    local cok, v, why = pcall(r.on_head, status, headers)
    if not cok then return nil, tr_error("CallbackError", "on_head raised: " .. tostring(v)) end
    if v == false or (v == nil and why ~= nil) then
      return nil, tr_error("Aborted", "on_head: " .. tostring(why or "returned false"))
    end
  end
  local res = { status = status, headers = headers, sent = x.sent }
  x.error_status = status >= 300
  if x.error_status or (not r.sink and not r.sink_file) then
    x.collect, x.parts, x.collected = true, {}, 0
  elseif r.sink_file then
    ok, e = open_sink_file(r.sink_file, x)
    if not ok then return nil, e end
  else
    x.sink = r.sink
  end
  local conn = lower(headers.connection or "")
  local keep = not conn:find("close", 1, true) and (version >= 11 or conn:find("keep-alive", 1, true) ~= nil)
  if x.error_status and x.sent > 0 then keep = false end
  local te = headers["transfer-encoding"]
  local cl = headers["content-length"]
  if r.method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200) then
    ok = true
  elseif te and lower(te):find("chunked%s*$") then
    ok, e = read_chunked(self, x)
  elseif cl then
    local first = cl:match("^%s*(%d+)%s*$") or cl:match("^%s*(%d+)%s*,")
    local n = tonumber(first)
    for v in cl:gmatch("[^,]+") do
      if tonumber(v) ~= n then n = nil break end
    end
    if not n then return nil, tr_error("ProtocolError", "malformed Content-Length: " .. cl:sub(1, 40)) end
    ok, e = read_exact(self, x, n, "reading the body")
  else
    keep = false
    ok, e = read_to_close(self, x)
  end
  if not ok then return nil, e end
  if x.out_file then
    local f = x.out_file
    x.out_file = nil
    local cok, ce = f:close()
    if not cok then return nil, tr_error("LocalFileError", "closing " .. x.out_path .. ": " .. tostring(ce)) end
  end
  res.bytes = x.bytes
  if x.collect then res.body = concat(x.parts) end
  res.hashes = digests(r.hashes, x.hashers)
  res.body_hashes = digests(r.body_hashes, x.body_hashers)
  res.connects = x.connects
  if keep then
    local kok = x.sock:setkeepalive(self.keepalive_timeout * 1000)
    if kok then self.idle[x.pool] = (self.idle[x.pool] or 0) + 1 end
  else
    x.sock:close()
  end
  x.sock = nil
  return res
end

local function cleanup(x)
  if x.sock then x.sock:close() x.sock = nil end
  if x.out_file then x.out_file:close() x.out_file = nil end
  if x.body_file then x.body_file:close() x.body_file = nil end
end

-- Phases with cosockets (objstore.transport.auto's list); elsewhere
-- (init, init_worker, log, header_filter, ...) a request is an error value.
local COSOCKET_PHASES = transport.COSOCKET_PHASES

local function no_cosockets()
  local phase = ngx.get_phase()
  if COSOCKET_PHASES[phase] then return nil end
  return tr_error("TransportError", "no cosockets in the " .. tostring(phase)
    .. " phase: defer the call with objstore.openresty.defer (ngx.timer.at(0, ...))")
end

--- One request. @return res, or nil, err
function Transport:request(req)
  if self.closed then errors.argument("transport.ngx.request", nil, "self", "the transport is closed") end
  local r = check_request(req)
  local perr = no_cosockets()
  if perr then return nil, perr end
  local u, why = parse_url(r.url)
  if not u then return nil, tr_error("InvalidURL", r.url:sub(1, 200) .. ": " .. why) end
  local timeout = r.timeout or self.timeout
  local deadline
  if timeout > 0 then
    ngx.update_time()
    deadline = ngx.now() + timeout
  end
  if r.max_speed > 0 then ngx.update_time() end
  -- Stale pooled connections are dropped until a fresh one is used.
  for _ = 1, self.pool_size + 1 do
    local x = { deadline = deadline, timeout = timeout, sent = 0, bytes = 0, max_speed = r.max_speed,
      max_body = r.max_body,
      started = ngx.now(), on_progress = r.on_progress, reported_sent = 0, reported_recv = 0, progress_at = 0,
      hashers = hashers(r.hashes), body_hashers = hashers(r.body_hashes) }
    if r.kind == "file" then
      local ok, e = open_body_file(r, x)
      if not ok then return nil, e end
    end
    local res, err, fresh = attempt(self, r, u, x)
    cleanup(x)
    if res then return res end
    if not fresh then return nil, err end
  end
  return nil, tr_error("ConnectionReset", "every pooled connection to " .. u.authority .. " was closed")
end

--- Pull-model concurrency on light threads: up to `n` requests at once
-- (default pool_size). See objstore.transport for the contract.
--
-- Completions come back through a semaphore, not ngx.thread.wait: `source`
-- may itself yield on a cosocket (an upload reading the next part from
-- ngx.req.socket()), and in lua-nginx-module 0.10.x a thread that ends
-- after a multi-thread wait() returned resumes its parent wherever it
-- yields - into that socket read, with the thread's results as its values.
function Transport:run(source, on_done, n)
  if self.closed then errors.argument("transport.ngx.run", nil, "self", "the transport is closed") end
  if type(source) ~= "function" then
    errors.argument("transport.ngx.run", 1, "source", "function expected, " .. errors.got(source))
  end
  if type(on_done) ~= "function" then
    errors.argument("transport.ngx.run", 2, "on_done", "function expected, " .. errors.got(on_done))
  end
  n = check_count("run", "n", n, self.pool_size)
  if n < 1 then n = 1 end
  local perr = no_cosockets()
  if perr then
    -- Every request the source has gets the error, as a failed transport's would.
    while true do
      local req = source()
      if req == nil then return nil, perr end
      on_done(req, nil, perr)
    end
  end
  local spawn, kill = ngx.thread.spawn, ngx.thread.kill
  local sema = require("ngx.semaphore").new(0)
  local slots, running, finished, serial = {}, 0, {}, 0 -- slots: id -> { thread, req }
  local function fail(e)
    for _, slot in pairs(slots) do kill(slot[1]) end
    error(e, 0)
  end
  local function worker(self_, id, req)
    local ok, res, err = pcall(self_.request, self_, req)
    finished[#finished + 1] = { id, ok, res, err }
    sema:post(1)
  end
  local drained = false
  while true do
    while not drained and running < n do
      local okc, req = pcall(source)
      if not okc then fail(req) end
      if req == nil then
        drained = true
      else
        serial = serial + 1
        local th, se = spawn(worker, self, serial, req)
        if not th then fail("objstore.transport.ngx.run: cannot spawn a light thread: " .. tostring(se)) end
        running = running + 1
        slots[serial] = { th, req }
      end
    end
    if running == 0 then return true end
    if #finished == 0 then
      local okw, werr = sema:wait(86400)
      if not okw then fail("objstore.transport.ngx.run: waiting for a request: " .. tostring(werr)) end
    end
    local f = remove(finished, 1)
    if f then
      local id, ok, res, err = f[1], f[2], f[3], f[4]
      if not ok then fail(res) end -- a request raised (misuse)
      local slot = slots[id]
      slots[id] = nil
      running = running - 1
      local okd, de = pcall(on_done, slot[2], res, err)
      if not okd then fail(de) end
      drained = false -- a completion may have made more work available
    end
  end
end

--- Sleeps `seconds` with ngx.sleep (yields to the nginx event loop).
function Transport.sleep(_, seconds)
  ngx.sleep(seconds)
end

--- A semaphore for the layer above (see the contract): ngx.semaphore, its
-- wait refused with an error value, never a raise, in a phase that cannot
-- yield (init_worker, log, header_filter, ...).
function Transport.semaphore(_)
  local sema = new_semaphore(0)
  return {
    wait = function(_, seconds)
      local ok, waited, err = pcall(sema.wait, sema, seconds)
      if not ok then return false, tostring(waited) end
      return waited, err
    end,
    post = function(_, n) sema:post(n) end,
    -- Negative: the number of threads waiting (credentials.refreshing
    -- wakes exactly those).
    count = function() return sema:count() end,
  }
end

--- Ends the idle connections this transport left in its pools and refuses
-- requests from then on; idempotent.
function Transport:close()
  if self.closed then return end
  self.closed = true
  local idle = self.idle
  self.idle = {}
  if type(ngx) ~= "table" or not ngx.socket then return end
  for pool, count in pairs(idle) do
    for _ = 1, count do
      local sock = ngx.socket.tcp()
      sock:settimeouts(1, 1, 1)
      -- The pool is looked up by name before any address is used: an idle
      -- connection is handed back at once; with none left, the connect to
      -- port 1 fails at once. Outside a cosocket context this raises: the
      -- idle connections then end with their keepalive timeout.
      local okc, ok = pcall(sock.connect, sock, "127.0.0.1", 1, { pool = pool })
      if okc and ok then sock:close() end
    end
  end
end

return _M
