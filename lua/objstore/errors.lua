--- Runtime failures as values: `nil, err` where `err` is a table
-- `{ code, message, status, request_id, host_id, retryable, op, bucket, key, ... }`
-- with a `__tostring` that reads like a log line. Misuse (wrong argument
-- types, closed objects) raises instead; see `errors.argument`.
local type, tostring, setmetatable, getmetatable, error, pairs =
  type, tostring, setmetatable, getmetatable, error, pairs
local concat = table.concat

local _M = {}

local mt = {}
mt.__index = mt

mt.__tostring = function(e)
  local parts = {}
  if e.op then
    local where = e.bucket and (e.key and (e.bucket .. "/" .. e.key) or e.bucket) or nil
    parts[#parts + 1] = where and (e.op .. " " .. where .. ":") or (e.op .. ":")
  end
  parts[#parts + 1] = tostring(e.code or "Error")
  if e.status then parts[#parts + 1] = "(HTTP " .. tostring(e.status) .. ")" end
  if e.message and e.message ~= "" then parts[#parts + 1] = "- " .. tostring(e.message) end
  if e.request_id then parts[#parts + 1] = "[request " .. tostring(e.request_id) .. "]" end
  return concat(parts, " ")
end

--- S3 and OSS error codes worth another attempt, beyond the HTTP statuses.
local RETRYABLE_CODES = {
  SlowDown = true, RequestTimeout = true, InternalError = true, ServiceUnavailable = true,
  Throttling = true, ThrottlingException = true, ThrottledException = true, RequestThrottled = true,
  TooManyRequestsException = true, ProvisionedThroughputExceededException = true,
  TransactionInProgressException = true, RequestLimitExceeded = true, BandwidthLimitExceeded = true,
  RequestTimeTooSkewed = true, ExpiredToken = true, ExpiredTokenException = true,
  PriorRequestNotComplete = true, IDPCommunicationError = true, EC2ThrottledException = true,
}
local RETRYABLE_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

function _M.is_retryable_code(code, status)
  if type(code) == "string" and (RETRYABLE_CODES[code] or code:find("^Throttl")) then return true end
  return RETRYABLE_STATUS[status] == true
end

--- Makes an error value. `t.retryable` is derived from code and status
-- when not given.
function _M.new(t)
  if t.retryable == nil then t.retryable = _M.is_retryable_code(t.code, t.status) end
  return setmetatable(t, mt)
end

--- A runtime failure found by objstore itself (not reported by a server):
-- not retryable unless `extra` says otherwise.
function _M.failure(op, code, message, bucket, key, extra)
  local e = { code = code, message = message, op = op, bucket = bucket, key = key, retryable = false }
  for k, v in pairs(extra or {}) do e[k] = v end
  return _M.new(e)
end

function _M.is_error(v)
  return type(v) == "table" and getmetatable(v) == mt
end

--- Raises a misuse error naming the function and argument, at the caller
-- of the API function (level 3: this helper, the API function, its caller).
function _M.argument(fname, msg, level)
  error("objstore." .. fname .. ": " .. msg, (level or 2) + 1)
end

return _M
