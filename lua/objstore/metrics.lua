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
--   objstore_inflight_requests                   gauge
--   objstore_circuit_state{endpoint}             gauge: 0 closed, 1 half-open, 2 open
-- Counters live in this process (one nginx worker); aggregating workers
-- through a shared dict is not done here.
local retry = require "objstore.retry"
local errors = require "objstore.errors"

local type, pairs, ipairs, tostring, tonumber, next, setmetatable, string_format =
  type, pairs, ipairs, tostring, tonumber, next, setmetatable, string.format
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

--- new{ buckets = {...} } -> registry
function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then errors.argument("metrics.new", 1, "opts", "must be a table, " .. errors.got(opts)) end
  local buckets = opts.buckets or _M.DEFAULT_BUCKETS
  for i, b in ipairs(buckets) do
    if type(b) ~= "number" or (i > 1 and b <= buckets[i - 1]) then
      errors.argument("metrics.new", 1, "opts.buckets", "must be increasing numbers")
    end
  end
  return setmetatable({ buckets = buckets, series = {}, inflight = 0,
    endpoint_sets = setmetatable({}, { __mode = "k" }) }, Registry)
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

function Registry:inc(name, labels, by)
  check_sample("inc", name, labels, by, "by")
  local s = self:_series(name, labels)
  s.value = s.value + (by or 1)
end

function Registry:observe(name, labels, v)
  check_sample("observe", name, labels, v, "v")
  if v == nil then errors.argument("metrics.observe", 3, "v", "must be a number, got nil") end
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
      reg:inc("objstore_requests_total", { operation = op, status = e.status or e.code or "unknown" })
      reg:observe("objstore_request_duration_seconds", { operation = op }, e.latency or 0)
      reg:inc("objstore_request_bytes_total", { operation = op, direction = "in" }, e.bytes_in or 0)
      reg:inc("objstore_request_bytes_total", { operation = op, direction = "out" }, e.bytes_out or 0)
      if e.error and retry.is_throttle(e.error) then reg:inc("objstore_throttles_total", { operation = op }) end
    end,
    on_retry = function(e)
      reg:inc("objstore_retries_total", { operation = e.op or "unknown", reason = e.reason or "unknown" })
    end,
    on_failover = function(e) reg:inc("objstore_failovers_total", { from = e.from, to = e.to }) end,
    on_error = function(e)
      reg:inc("objstore_errors_total", { operation = e.op or "unknown", code = e.error and e.error.code or "unknown" })
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

--- The registry in the Prometheus text exposition format 0.0.4.
function Registry:prometheus()
  local out = {}
  local function line(s) out[#out + 1] = s end
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
  for _, f in ipairs(FAMILIES) do
    local name, kind, help = f[1], f[2], f[3]
    local fam = gauges[name] or self.series[name]
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
