--- The request record: the one way an operation, a transfer part, a sync
-- action or a presign describes a request. Built by `request.new`, which
-- checks every field and names the bad one; sent by the pipeline
-- (objstore.engine.pipeline), which signs it for the endpoint it goes to.
--
--   local request = require "objstore.engine.request"
--   local req = request.new{ op = "GetObject", method = "GET", bucket = "b", key = "k",
--     headers = { Range = "bytes=0-9" }, parse = function(res) return res.body end }
--
-- Fields (all optional but `op` and `method`):
--   op           operation name for errors and events ("PutObject")
--   method       HTTP method, upper case
--   bucket, key  the key raw (unencoded), valid UTF-8, at most 1024 bytes
--   query        { name = value | true } or { {name, value}, ... }; true
--                (or a value-less pair) is a sub-resource such as ?uploads
--   headers      { name = value }; values are sent as tostring(value)
--   copy_source  { bucket =, key =, version_id = } rendered as the dialect's
--                copy-source header for the endpoint the request goes to
--   body         string | core.buffer | { file = path, offset = n, length = n } | reader
--                function() -> chunk | nil | nil, err
--   body_length  a reader's total (otherwise it is sent chunked)
--   rewind       function() that rewinds a reader, so it can be retried
--   sink         nil (collect) | function(chunk) | { file = path, offset = n }
--   sink_rewind  function() after which a function sink may be fed again
--   sink_retryable  function() -> whether a function sink is still as new
--                (nothing it took has gone where it cannot be taken back):
--                the request may be retried while it says so (no rewind
--                needed), not once it says no (objstore.openresty.serve_object:
--                until the response head went to the client)
--   on_head      function(status, headers) called with each attempt's response
--                head before its body (the transport contract's on_head)
--   on_progress  function(sent, received): each attempt's body bytes so far
--                (the transport contract's on_progress; a retry starts at 0)
--   hashes, body_hashes  digests of the response / request body
--   payload_hash the signed payload hash (default UNSIGNED-PAYLOAD)
--   timeout      seconds, for this request only
--   max_speed    bytes per second its bodies move at most (transport contract)
--   max_body     bytes a collected (sink nil) 2xx response body may reach: past
--                it the request fails with ResponseTooLarge, the bytes never
--                kept. nil: request.DEFAULT_MAX_BODY (32 MiB, the XML parser's
--                limit) when the body is collected; 0: no cap (GetObject into
--                a string: the caller asked for the object in memory)
--   ok_status    { [status] = true }: statuses beyond 2xx that succeed
--   parse        function(res, req) -> result | nil, err
--   retry        a retry policy for this request (default: the client's)
--   on_retry     function(err, attempt, delay), before each retry
--   context      anything the caller wants back in done(req, ...)
--
-- A local failure found while describing a request (a file that shrank, a
-- checkpoint that vanished) is `request.failed(op, err)`: a completed
-- request whose outcome is that error; the pipeline never sends it.
local errors = require "objstore.errors"
local core = require "objstore.core"

local type, pairs, ipairs, tostring, setmetatable, getmetatable, io_type =
  type, pairs, ipairs, tostring, setmetatable, getmetatable, io.type
local utf8_valid = core.encode.utf8_valid
local is_buffer = core.buffer.is

local _M = {}

--- The cap on a collected response body when the request names none: the
-- XML parser's own limit (core.xml.default_max_size, 32 MiB). Checked by
-- the transport as the bytes arrive, not after they were all buffered.
_M.DEFAULT_MAX_BODY = core.xml and core.xml.default_max_size or 32 * 1024 * 1024

local Request = {}
Request.__index = Request
_M.Request = Request

local function bad(name, problem)
  errors.argument("engine.request.new", 1, "req." .. name, problem)
end

--- Checks a bucket name as every S3-compatible service takes it; returns the
-- problem or nil. (Whether it can be a host name is the endpoint's concern.)
function _M.bucket_problem(bucket)
  if type(bucket) ~= "string" or bucket == "" then return "must be a non-empty string, " .. errors.got(bucket) end
  if #bucket > 255 or bucket:find("[/%z\1-\31\127]") or not utf8_valid(bucket) then
    return "'" .. bucket:sub(1, 64) .. "' is not a valid bucket name"
  end
  return nil
end

--- Checks an object key; returns the problem or nil.
function _M.key_problem(key)
  if type(key) ~= "string" or key == "" then return "must be a non-empty string, " .. errors.got(key) end
  if #key > 1024 then return "is longer than 1024 bytes" end
  if key:find("\0", 1, true) then return "contains a NUL byte" end -- plain: no pattern on every key
  if not utf8_valid(key) then return "is not valid UTF-8" end
  return nil
end

local function check_string_map(name, t)
  if type(t) ~= "table" then bad(name, "must be a table, " .. errors.got(t)) end
  for k, v in pairs(t) do
    if type(k) ~= "string" then bad(name, "names must be strings, got " .. type(k)) end
    local tv = type(v)
    if tv ~= "string" and tv ~= "number" and tv ~= "boolean" then
      bad(name .. "." .. k, "must be a string, number or boolean, " .. errors.got(v))
    end
  end
end

local function check_query(q)
  if type(q) ~= "table" then bad("query", "must be a table, " .. errors.got(q)) end
  if q[1] ~= nil then
    for i, kv in ipairs(q) do
      if type(kv) ~= "table" or type(kv[1]) ~= "string" then
        bad("query[" .. i .. "]", "must be a {name, value} pair")
      end
    end
  else
    check_string_map("query", q)
  end
end

local function check_digests(name, list)
  if type(list) ~= "table" then bad(name, "must be a list of digest names, " .. errors.got(list)) end
  for i, v in ipairs(list) do
    if type(v) ~= "string" then bad(name .. "[" .. i .. "]", "must be a string, " .. errors.got(v)) end
  end
end

local function check_number(name, v, min)
  if type(v) ~= "number" or v ~= v or v < min then bad(name, "must be a number >= " .. min .. ", " .. errors.got(v)) end
end

local function check_body(t)
  local b, tb = t.body, type(t.body)
  if is_buffer(b) then tb = "string" end
  if tb == "table" then
    if type(b.file) ~= "string" then bad("body.file", "must be a path string, " .. errors.got(b.file)) end
    if b.offset ~= nil then check_number("body.offset", b.offset, 0) end
    if b.length ~= nil then check_number("body.length", b.length, 0) end
  elseif tb ~= "string" and tb ~= "function" and tb ~= "nil" then
    bad("body", "must be a string, a {file=} range or a reader function, " .. errors.got(b))
  end
  if t.body_length ~= nil then
    check_number("body_length", t.body_length, 0)
    if b == nil and t.body_length > 0 then bad("body_length", "is given without a body") end
  end
  if t.method == "HEAD" and b ~= nil and b ~= "" then bad("body", "a HEAD request cannot have a body") end
end

local function check_sink(s)
  local ts = type(s)
  if ts == "table" then
    if type(s.file) ~= "string" then bad("sink.file", "must be a path string, " .. errors.got(s.file)) end
    if s.offset ~= nil then check_number("sink.offset", s.offset, 0) end
  elseif ts ~= "function" and ts ~= "nil" then
    bad("sink", "must be a function or a {file=} table, " .. errors.got(s))
  end
end

local KIND = {
  op = "string", method = "string", bucket = "string", key = "string", query = "table", headers = "table",
  copy_source = "table", body = "any", body_length = "number", rewind = "function", sink = "any",
  sink_rewind = "function", sink_retryable = "function", hashes = "table", body_hashes = "table",
  payload_hash = "string", timeout = "number", max_speed = "number", max_body = "number", on_head = "function",
  on_progress = "function",
  ok_status = "table", parse = "function", retry = "table", on_retry = "function", context = "any",
  sub_resources = "table",
}

--- Makes a request record from a table of fields (the table becomes the
-- record). Raises naming the first bad field.
function _M.new(t)
  if type(t) ~= "table" then errors.argument("engine.request.new", 1, "req", "must be a table, " .. errors.got(t)) end
  if getmetatable(t) == Request then return t end
  for k, v in pairs(t) do
    local want = KIND[k]
    if not want then bad(tostring(k), "is not a request field") end
    if want ~= "any" and type(v) ~= want then bad(k, "must be a " .. want .. ", " .. errors.got(v)) end
  end
  if type(t.op) ~= "string" or t.op == "" then bad("op", "is required (the operation name)") end
  if type(t.method) ~= "string" or not t.method:match("^[A-Z]+$") then
    bad("method", "must be an upper-case HTTP method, " .. (t.method and ("got '" .. tostring(t.method) .. "'")
      or "got nil"))
  end
  if t.bucket ~= nil then
    local p = _M.bucket_problem(t.bucket)
    if p then bad("bucket", p) end
  end
  if t.key ~= nil then
    local p = _M.key_problem(t.key)
    if p then bad("key", p) end
    if t.bucket == nil then bad("key", "is given without a bucket") end
  end
  if t.query then check_query(t.query) end
  if t.headers then check_string_map("headers", t.headers) end
  if t.copy_source then
    local cs = t.copy_source
    local p = _M.bucket_problem(cs.bucket) or nil
    if p then bad("copy_source.bucket", p) end
    p = _M.key_problem(cs.key)
    if p then bad("copy_source.key", p) end
  end
  if io_type(t.body) == "file" then bad("body", "must not be a file handle (give a reader function)") end
  check_body(t)
  check_sink(t.sink)
  if t.hashes then check_digests("hashes", t.hashes) end
  if t.body_hashes then check_digests("body_hashes", t.body_hashes) end
  if t.timeout ~= nil then check_number("timeout", t.timeout, 0) end
  if t.max_speed ~= nil then
    check_number("max_speed", t.max_speed, 0)
    if t.max_speed % 1 ~= 0 then bad("max_speed", "must be a whole number of bytes per second") end
  end
  if t.max_body ~= nil then
    check_number("max_body", t.max_body, 0)
    if t.max_body % 1 ~= 0 then bad("max_body", "must be a whole number of bytes") end
  end
  return setmetatable(t, Request)
end

--- The cheap constructor, for objstore's own builders alone (not public:
-- the underscore): a record from fields whose op and method are the
-- builder's constants and whose bucket and key it has just checked (with
-- request.bucket_problem and key_problem, raising as misuse of its own
-- argument). Only fields that carry caller data on as they are (query,
-- headers) are checked, as `new` checks them (same messages); no other
-- field may be given. A presign's whole record costs a few hundred
-- nanoseconds less than through `new`, which re-checks all of it.
function _M._prechecked(t)
  if t.query then check_query(t.query) end
  if t.headers then check_string_map("headers", t.headers) end
  return setmetatable(t, Request)
end

--- A completed request whose outcome is `err` (a local failure): the
-- pipeline hands it to done() without sending anything.
function _M.failed(op, err, context)
  if type(op) ~= "string" then
    errors.argument("engine.request.failed", 1, "op", "must be a string, " .. errors.got(op))
  end
  if not errors.is(err) then errors.argument("engine.request.failed", 2, "err", "must be an objstore error") end
  err.op = err.op or op
  return setmetatable({ op = op, error = err, context = context }, Request)
end

--- Whether v is a request record.
function _M.is(v)
  return getmetatable(v) == Request
end

--- Can this request be sent again? Strings and file ranges can; a reader
-- only with `rewind`, or while the transport has not called it yet (the
-- pipeline counts its calls in `reader_calls`); a function sink that may have been fed only with
-- `sink_rewind`, or while its `sink_retryable()` says it is still as new.
function Request:rewindable()
  -- reader_calls: counted by the pipeline; a reader never called can start again
  if type(self.body) == "function" and not self.rewind and self.reader_calls ~= 0 then return false end
  if type(self.sink) == "function" then
    local fresh = self.sink_retryable
    if fresh then return fresh() == true end
    if not self.sink_rewind then return false end
  end
  return true
end

return _M
