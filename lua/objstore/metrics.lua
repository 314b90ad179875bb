--- Prometheus metrics fed by the pipeline's events.
--
--   local metrics = require "objstore.metrics"
--   local registry = metrics.new()
--   local c = objstore.new{ ..., metrics = registry }   -- as many clients as you like
--   io.write(registry:prometheus())                     -- text exposition format 0.0.4
--
-- Families (every HTTP request sent counts, retries included):
--   objstore_requests_total{operation, status}   status: the HTTP code, or the
--                                                transport error code
--   objstore_request_duration_seconds{operation} histogram
--   objstore_request_bytes_total{operation, direction="in"|"out"}
--   objstore_retries_total{operation, reason}
--   objstore_throttles_total{operation}
--   objstore_failovers_total{from, to}
--   objstore_errors_total{operation, code}       failures that reached the caller
--
-- Label values a server chooses are bounded: `code` and `reason` keep the
-- error codes of KNOWN_CODES (S3's and OSS's documented codes, objstore's
-- own and the transport's) and fold anything else into "other"; `status` keeps
-- HTTP statuses 100..599 and folds other numbers into "other". A server
-- inventing a code per answer cannot grow the registry without bound.
--   objstore_inflight_requests                   gauge
--   objstore_circuit_state{endpoint}             gauge: 0 closed, 1 half-open, 2 open
--
-- **OpenResty, all workers together**: `metrics.new{ shared = "objstore_metrics" }`
-- with `lua_shared_dict objstore_metrics 1m;` in the http block. Events
-- still only touch this worker's counters (no shared-dict operation per
-- event); a timer (`ngx.timer.every(flush_interval)`, default 1 s, started
-- on the first event) adds each series' change since the last flush to the
-- dict, one `incr` per changed series. `prometheus()` flushes this worker,
-- then renders the sum over every worker from the dict: another worker's
-- last `flush_interval` of events may be missing. Gauges: in-flight
-- requests summed over the workers, circuit state the worst a worker saw.
local retry = require "objstore.engine.retry"
local transport = require "objstore.transport"
local errors = require "objstore.errors"

local type, pairs, ipairs, tostring, tonumber, next, setmetatable, string_format, rawget, pcall =
  type, pairs, ipairs, tostring, tonumber, next, setmetatable, string.format, rawget, pcall
local _G = _G
local concat, sort = table.concat, table.sort

local _M = {}

local Registry = {}
Registry.__index = Registry

_M.DEFAULT_BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }

local FAMILIES = {
  { "objstore_requests_total", "counter", "HTTP requests sent, by operation and HTTP status or transport error" },
  { "objstore_request_duration_seconds", "histogram", "Time from sending a request to its outcome" },
  { "objstore_request_bytes_total", "counter", "Body bytes sent (out) and received (in)" },
  { "objstore_retries_total", "counter", "Attempts retried, by the error that caused them" },
  { "objstore_throttles_total", "counter", "Responses that asked the client to slow down" },
  { "objstore_failovers_total", "counter", "Retries sent to another endpoint" },
  { "objstore_errors_total", "counter", "Requests that failed after their retries" },
  { "objstore_inflight_requests", "gauge", "Requests sent and not yet answered" },
  { "objstore_circuit_state", "gauge", "Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open" },
}

-- Error codes kept as label values (anything else is "other").
local KNOWN_CODES = {}
for code in ([[
AccessDenied AccessForbidden AccountProblem AllAccessDisabled AmbiguousGrantByEmailAddress
AuthorizationHeaderMalformed AuthorizationQueryParametersError BadDigest BadRequest BadGateway
BucketAlreadyExists BucketAlreadyOwnedByYou BucketNotEmpty ConditionalRequestConflict Conflict
CredentialsNotSupported CrossLocationLoggingProhibited EntityTooLarge EntityTooSmall ExpiredToken
ExpiredTokenException FieldItemTooLong FilePartInterity FilePartNotExist FilePartStale Forbidden
GatewayTimeout IllegalLocationConstraintException IllegalVersioningConfigurationException IncompleteBody
IncorrectNumberOfFilesInPostRequest IncorrectNumberOfFilesInPOSTRequest InlineDataTooLarge InternalError
InvalidAccessKeyId InvalidAddressingHeader InvalidArgument InvalidBucketName InvalidBucketState InvalidDigest
InvalidEncryptionAlgorithmError InvalidLocationConstraint InvalidObjectName InvalidObjectState InvalidPart
InvalidPartOrder InvalidPayer InvalidPolicyDocument InvalidRange InvalidRegion InvalidRequest InvalidResponse
InvalidSecurity InvalidSecurityToken InvalidSOAPRequest InvalidStorageClass InvalidTag
InvalidTargetBucketForLogging InvalidToken InvalidURI KeyTooLongError MalformedACLError MalformedPOSTRequest
MalformedXML MaxMessageLengthExceeded MaxPostPreDataLengthExceededError MaxPOSTPreDataLengthExceededError
MetadataTooLarge MethodNotAllowed MissingArgument MissingAttachment MissingContentLength
MissingRequestBodyError MissingSecurityElement MissingSecurityHeader NoLoggingStatusForKey NoSuchBucket
NoSuchBucketPolicy NoSuchCORSConfiguration NoSuchKey NoSuchLifecycle NoSuchLifecycleConfiguration
NoSuchObjectLockConfiguration NoSuchTagSet NoSuchUpload NoSuchVersion NoSuchWebsiteConfiguration NotFound
NotImplemented NotModified NotSignedUp ObjectLockConfigurationNotFoundError ObjectNotAppendable
OperationAborted PermanentRedirect PositionNotEqualToLength PreconditionFailed Redirect RequestExpired
RequestIsNotMultiPartContent RequestLimitExceeded RequestTimeout RequestTimeTooSkewed RequestTorrentOfBucketError
RestoreAlreadyInProgress SecurityTokenExpired ServerSideEncryptionConfigurationNotFoundError
ServiceUnavailable SignatureDoesNotMatch SlowDown SymlinkTargetNotExist TemporaryRedirect Throttling
ThrottlingException TokenRefreshRequired TooManyBuckets TooManyRequests UnexpectedContent
UnresolvableGrantByEmailAddress UserKeyMustBeSpecified XAmzContentSHA256Mismatch
Aborted BadDigest BodyNotStreamable BodyReadError ChecksumNotVerified CorruptJournal CredentialsError
LocalFileError MalformedResponse NoCredentials NotVerified QuorumNotReached ReaderError ResponseTooLarge
SSENotApplied SigningError SyncFailed TooManyParts TransportError UnsafeKey unknown
]]):gmatch("%S+") do KNOWN_CODES[code] = true end
for code in pairs(transport.CODES) do KNOWN_CODES[code] = true end
_M.KNOWN_CODES = KNOWN_CODES

--- code_label(code) -> label
-- The label value of an error code: the code when known, else "other".
local function code_label(code)
  if code == nil then return "unknown" end
  return KNOWN_CODES[code] and code or "other"
end
_M.code_label = code_label

--- The label value of an HTTP status (a number 100..599) or, without one,
-- of a transport error code.
local function status_label(status, code)
  if status ~= nil then
    local n = tonumber(status)
    if n and n >= 100 and n <= 599 and n % 1 == 0 then return string_format("%d", n) end
    return "other"
  end
  return code_label(code)
end

--- new(opts) -> registry
-- A registry; give it to clients as their `metrics` option.
-- opts.buckets: the histogram buckets in seconds (default DEFAULT_BUCKETS,
--   5 ms to 60 s).
-- opts.shared: a lua_shared_dict name: the registry sums every nginx
--   worker (OpenResty).
-- opts.flush_interval: seconds between a worker's flushes to the dict
--   (default 1).
-- opts.families: more counter families to render, after objstore's own:
--   a list of { name, help } (the S3 front's per-tenant counters use it);
--   a series is rendered only when its family is listed.
function _M.new(opts)
  opts = errors.options("metrics.new", 1, opts, { buckets = "table", shared = true, flush_interval = true,
    families = "table" })
  local families = {}
  for _, f in ipairs(FAMILIES) do families[#families + 1] = f end
  for i, f in ipairs(opts.families or {}) do
    if type(f) ~= "table" or type(f[1]) ~= "string" or not f[1]:match("^[%a_:][%w_:]*$") or type(f[2]) ~= "string"
      or f[2]:find("\n") then
      errors.argument("metrics.new", 1, "opts.families[" .. i .. "]", "must be { metric name, help text }")
    end
    families[#families + 1] = { f[1], "counter", f[2] }
  end
  local buckets = opts.buckets or _M.DEFAULT_BUCKETS
  for i, b in ipairs(buckets) do
    if type(b) ~= "number" or (i > 1 and b <= buckets[i - 1]) then
      errors.argument("metrics.new", 1, "opts.buckets", "must be increasing numbers")
    end
  end
  if opts.shared ~= nil and type(opts.shared) ~= "string" then
    errors.argument("metrics.new", 1, "opts.shared", "must be a lua_shared_dict name, " .. errors.got(opts.shared))
  end
  local interval = opts.flush_interval or 1
  if type(interval) ~= "number" or interval <= 0 then
    errors.argument("metrics.new", 1, "opts.flush_interval", "must be a positive number of seconds")
  end
  return setmetatable({ buckets = buckets, series = {}, inflight = 0,
    endpoint_sets = setmetatable({}, { __mode = "k" }), shared = opts.shared, flush_interval = interval,
    flushed = {}, families = families }, Registry)
end

--- Label sets as one key: label names sorted, values escaped as the
-- exposition format wants them.
local function escape(v)
  return (tostring(v):gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n"))
end

local function label_text(labels)
  local names = {}
  for k in pairs(labels) do names[#names + 1] = k end
  sort(names)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = k .. '="' .. escape(labels[k]) .. '"' end
  return concat(parts, ",")
end

--- Raises unless (name, labels, value) can make a sample of method `fn`.
local function check_sample(fn, name, labels, value, value_name)
  if type(name) ~= "string" or not name:match("^[%a_:][%w_:]*$") then
    errors.argument("metrics." .. fn, 1, "name", "must be a metric name, " .. errors.got(name))
  end
  if labels ~= nil and type(labels) ~= "table" then
    errors.argument("metrics." .. fn, 2, "labels", "must be a table, " .. errors.got(labels))
  end
  if value ~= nil and (type(value) ~= "number" or value ~= value) then
    errors.argument("metrics." .. fn, 3, value_name, "must be a number, " .. errors.got(value))
  end
end

function Registry:_series(name, labels)
  labels = labels or {}
  local fam = self.series[name]
  if not fam then
    fam = {}
    self.series[name] = fam
  end
  local key = label_text(labels)
  local s = fam[key]
  if not s then
    s = { labels = key, value = 0 }
    fam[key] = s
  end
  return s
end

-- The flush timer of a shared registry, started on the first event in a
-- phase that may create timers (never at require or new).
local function start_flusher(self)
  if not self.shared or self.flusher then return end
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.timer) ~= "table" then return end
  local reg = self
  local ok = pcall(ngx.timer.every, self.flush_interval, function(premature)
    reg:flush()
    if premature then reg.flusher = nil end
  end)
  self.flusher = ok or nil
end

--- inc(name, labels, by)
-- Adds `by` (default 1) to the counter `name` with these labels.
function Registry:inc(name, labels, by)
  check_sample("inc", name, labels, by, "by")
  start_flusher(self)
  local s = self:_series(name, labels)
  s.value = s.value + (by or 1)
end

--- observe(name, labels, v)
-- Records `v` (seconds) in the histogram `name` with these labels.
function Registry:observe(name, labels, v)
  check_sample("observe", name, labels, v, "v")
  if v == nil then errors.argument("metrics.observe", 3, "v", "must be a number, got nil") end
  start_flusher(self)
  local s = self:_series(name, labels)
  if not s.counts then
    s.counts, s.sum, s.count = {}, 0, 0
    for i = 1, #self.buckets do s.counts[i] = 0 end
  end
  for i, b in ipairs(self.buckets) do
    if v <= b then s.counts[i] = s.counts[i] + 1 end
  end
  s.sum, s.count = s.sum + v, s.count + 1
end

--- The hooks that feed this registry from a client's events.
function Registry:hooks(endpoint_set)
  if endpoint_set ~= nil and type(endpoint_set) ~= "table" then
    errors.argument("metrics.hooks", 1, "endpoint_set", "must be an endpoint set, " .. errors.got(endpoint_set))
  end
  if endpoint_set then self.endpoint_sets[endpoint_set] = true end
  local reg = self
  return {
    on_request = function() reg.inflight = reg.inflight + 1 end,
    on_response = function(e)
      reg.inflight = reg.inflight - 1
      local op = e.op or "unknown"
      reg:inc("objstore_requests_total", { operation = op, status = status_label(e.status, e.code) })
      reg:observe("objstore_request_duration_seconds", { operation = op }, e.latency or 0)
      reg:inc("objstore_request_bytes_total", { operation = op, direction = "in" }, e.bytes_in or 0)
      reg:inc("objstore_request_bytes_total", { operation = op, direction = "out" }, e.bytes_out or 0)
      if e.error and retry.is_throttle(e.error) then reg:inc("objstore_throttles_total", { operation = op }) end
    end,
    on_retry = function(e)
      reg:inc("objstore_retries_total", { operation = e.op or "unknown", reason = code_label(e.reason) })
    end,
    on_failover = function(e) reg:inc("objstore_failovers_total", { from = e.from, to = e.to }) end,
    on_error = function(e)
      reg:inc("objstore_errors_total", { operation = e.op or "unknown", code = code_label(e.error and e.error.code) })
    end,
  }
end

local STATE = { closed = 0, ["half-open"] = 1, open = 2 }

local function number(v)
  if v == math.huge then return "+Inf" end
  if v % 1 == 0 and v > -1e15 and v < 1e15 then return string_format("%d", v) end
  -- The shortest form that reads back as the same number.
  local short = string_format("%.15g", v)
  if tonumber(short) == v then return short end
  return string_format("%.17g", v)
end

-- This worker's gauges: { family = { labels = series } }.
local function local_gauges(self)
  local gauges = {
    objstore_inflight_requests = { [""] = { labels = "", value = self.inflight } },
    objstore_circuit_state = {},
  }
  for set in pairs(self.endpoint_sets) do
    for _, m in ipairs(set.members) do
      local key = label_text{ endpoint = m.ep.url }
      gauges.objstore_circuit_state[key] = { labels = key, value = STATE[m.state] or 0 }
    end
  end
  return gauges
end

-- Shared-dict keys: "c" counters and histogram fields, "g" gauges per worker.
local SEP = "\0"

local function dict_of(self)
  local ngx = rawget(_G, "ngx")
  local dict = type(ngx) == "table" and ngx.shared and ngx.shared[self.shared]
  if not dict then
    return nil, "no lua_shared_dict named '" .. tostring(self.shared) .. "' in the nginx configuration"
  end
  return dict, ngx
end

--- Adds this worker's changes since the last flush to the shared dict (a
-- shared registry only; the timer calls it). Returns true or nil, err.
function Registry:flush()
  if not self.shared then return true end
  local dict, ngx = dict_of(self)
  if not dict then return nil, ngx end
  local flushed = self.flushed
  local function add(key, now)
    local delta = now - (flushed[key] or 0)
    if delta ~= 0 then
      local ok, err = dict:incr(key, delta, 0)
      if not ok then return nil, err end
      flushed[key] = now
    end
    return true
  end
  for name, fam in pairs(self.series) do
    for labels, s in pairs(fam) do
      local base = "c" .. SEP .. name .. SEP .. labels .. SEP
      if s.counts then
        for i = 1, #self.buckets do add(base .. "b" .. i, s.counts[i]) end
        add(base .. "s", s.sum)
        add(base .. "n", s.count)
      else
        add(base .. "v", s.value)
      end
    end
  end
  local wid = tostring(ngx.worker.pid())
  for name, fam in pairs(local_gauges(self)) do
    for labels, s in pairs(fam) do
      dict:set("g" .. SEP .. name .. SEP .. labels .. SEP .. wid, s.value, self.flush_interval * 5 + 10)
    end
  end
  return true
end

-- Every worker's series and gauges, read back from the shared dict.
local function shared_view(self)
  local dict, err = dict_of(self)
  if not dict then return nil, err end
  local series, gauges = {}, { objstore_inflight_requests = {}, objstore_circuit_state = {} }
  for _, key in ipairs(dict:get_keys(0)) do
    local kind, name, labels, field = key:match("^(%a)%z([^%z]+)%z([^%z]*)%z(.*)$")
    local v = dict:get(key)
    if kind == "c" and v then
      local fam = series[name] or {}
      series[name] = fam
      local s = fam[labels]
      if not s then
        s = { labels = labels, value = 0 }
        fam[labels] = s
      end
      if field == "v" then
        s.value = v
      else
        if not s.counts then
          s.counts, s.sum, s.count = {}, 0, 0
          for i = 1, #self.buckets do s.counts[i] = 0 end
        end
        if field == "s" then s.sum = v
        elseif field == "n" then s.count = v
        else
          local i = tonumber(field:sub(2))
          if i then s.counts[i] = v end
        end
      end
    elseif kind == "g" and v and gauges[name] then
      local fam = gauges[name]
      local s = fam[labels]
      if not s then
        fam[labels] = { labels = labels, value = v }
      elseif name == "objstore_inflight_requests" then
        s.value = s.value + v
      elseif v > s.value then
        s.value = v
      end
    end
  end
  if next(gauges.objstore_inflight_requests) == nil then
    gauges.objstore_inflight_requests[""] = { labels = "", value = 0 }
  end
  return series, gauges
end

--- The registry in the Prometheus text exposition format 0.0.4 (a shared
-- registry: every worker's, after flushing this one's). A shared registry
-- whose dict is missing raises: that is a configuration mistake.
function Registry:prometheus()
  local all_series, gauges = self.series
  if self.shared then
    local ok, ferr = self:flush()
    if not ok then errors.argument("metrics.prometheus", nil, "self", tostring(ferr)) end
    all_series, gauges = shared_view(self)
  else
    gauges = local_gauges(self)
  end
  local out = {}
  local function line(s) out[#out + 1] = s end
  for _, f in ipairs(self.families) do
    local name, kind, help = f[1], f[2], f[3]
    local fam = gauges[name] or all_series[name]
    if fam and next(fam) ~= nil then
      line("# HELP " .. name .. " " .. help)
      line("# TYPE " .. name .. " " .. kind)
      local keys = {}
      for k in pairs(fam) do keys[#keys + 1] = k end
      sort(keys)
      for _, k in ipairs(keys) do
        local s = fam[k]
        local lb = s.labels ~= "" and ("{" .. s.labels .. "}") or ""
        if kind == "histogram" then
          local sep = s.labels ~= "" and (s.labels .. ",") or ""
          for i, b in ipairs(self.buckets) do
            line(name .. "_bucket{" .. sep .. 'le="' .. number(b) .. '"} ' .. number(s.counts[i]))
          end
          line(name .. "_bucket{" .. sep .. 'le="+Inf"} ' .. number(s.count))
          line(name .. "_sum" .. lb .. " " .. number(s.sum))
          line(name .. "_count" .. lb .. " " .. number(s.count))
        else
          line(name .. lb .. " " .. number(s.value))
        end
      end
    end
  end
  return concat(out, "\n") .. "\n"
end

return _M
