--- The one error convention of objstore.
--
-- Runtime failures are values: `nil, err` where `err` is a table
-- `{ code, message, status, request_id, host_id, retryable, op, bucket, key, ... }`
-- with the shared metatable, whose `__tostring` reads like a log line. The
-- metatable is created by the C core (`core.error_mt`), so errors made in C
-- (signer, hashes, XML, transport) and in Lua are one kind of value.
--
-- Misuse (wrong argument types, unknown options, closed objects) raises, in
-- one format made by `errors.argument`:
--   objstore.<module>.<function>: argument #<n> (<name>): <problem>
local core = require "objstore.core"

local type, tostring, setmetatable, getmetatable, error, pairs, ipairs =
  type, tostring, setmetatable, getmetatable, error, pairs, ipairs
local concat, sort = table.concat, table.sort

local _M = {}

local mt = core.error_mt
_M.metatable = mt

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

--- Makes an error value (gives `t` the shared metatable and returns it).
-- `t.retryable` is derived from code and status when not given.
function _M.new(t)
  if type(t) ~= "table" then _M.argument("errors.new", 1, "t", "must be a table, " .. _M.got(t)) end
  if t.retryable == nil then t.retryable = _M.is_retryable_code(t.code, t.status) end
  return setmetatable(t, mt)
end

--- Whether v is an error value of objstore.
function _M.is(v)
  return type(v) == "table" and getmetatable(v) == mt
end

--- A runtime failure found by objstore itself (not reported by a server):
-- not retryable unless `extra` says otherwise.
function _M.failure(op, code, message, bucket, key, extra)
  local e = { code = code, message = message, op = op, bucket = bucket, key = key, retryable = false }
  for k, v in pairs(extra or {}) do e[k] = v end
  return _M.new(e)
end

--- Adds the request context (op, bucket, key) an error lacks, and returns it.
function _M.locate(err, op, bucket, key)
  if type(err) ~= "table" then return err end
  if err.op == nil then err.op = op end
  if err.bucket == nil then err.bucket = bucket end
  if err.key == nil then err.key = key end
  return err
end

--- Raises a misuse error in the one format:
--   objstore.<fname>: argument #<n> (<name>): <problem>
-- `fname` is "<module>.<function>" (e.g. "client.put_object"); `n` counts
-- the arguments as the caller wrote them (a method's self is not counted);
-- n == nil leaves out "argument #n" for misuse that is not about one
-- argument (a closed object). `level` is the stack level of the API
-- function's caller as seen from that function (default 2).
-- When `level` is nil the blame goes to the first caller outside objstore's
-- own Lua modules, however deep the check sits.
local getinfo = debug.getinfo

local function outside_level()
  local l = 3
  while true do
    local info = getinfo(l, "S")
    if not info then return 1 end
    local src = info.source
    -- Lua 5.1 shows a tail call as a frame of its own, with no line to
    -- blame: the blame goes to the frame below it.
    if info.what ~= "C" and info.what ~= "tail" and not src:find("objstore/[%w_/]+%.lua$") then return l - 1 end
    l = l + 1
  end
end

function _M.argument(fname, n, name, problem, level)
  if type(fname) ~= "string" or not fname:match("^[%w_]+[%w_.]*$") then
    -- misuse of the misuse reporter itself, in its own format
    fname, n, name, problem, level = "errors.argument", 1, "fname", "must be a name like 'module.function', "
      .. _M.got(fname), nil
  elseif problem == nil then
    fname, n, name, level = "errors.argument", 4, "problem", nil
    problem = "must say what is wrong"
  elseif level ~= nil and (type(level) ~= "number" or level ~= level or level < 1 or level > 1e6) then
    fname, n, name, problem, level = "errors.argument", 5, "level", "must be a stack level", nil
  end
  local where = n and ("argument #" .. tostring(n) .. " (" .. tostring(name) .. "): ")
    or (name and ("(" .. tostring(name) .. "): ") or "")
  error("objstore." .. fname .. ": " .. where .. tostring(problem), level and (level + 1) or outside_level())
end

--- Checks an options table, in the one wording of every objstore function;
-- returns it ({} for nil). `allowed` maps each option name to true (any
-- value; "any" too) or the Lua type its value must have ("string", "number",
-- "boolean", "function", "table"). `where` names the table in messages
-- (default "opts"; "opts.tls" for a nested one). Raises:
--   objstore.<fname>: argument #<n> (opts): must be a table, got number
--   objstore.<fname>: argument #<n> (opts.foo): is not an option of <fname>
--   objstore.<fname>: argument #<n> (opts.foo): must be a string, got number
-- blamed on the first caller outside objstore. Of several bad names the
-- first in sorted order is named, so the message does not depend on pairs().
local function option_problem(allowed, k, v)
  local want = allowed[k]
  if not want then return "unknown" end
  if want ~= true and want ~= "any" and type(v) ~= want then return want end
end

local function by_name(a, b) return tostring(a) < tostring(b) end

function _M.options(fname, n, opts, allowed, where)
  if type(fname) ~= "string" then _M.argument("errors.options", 1, "fname", "must be a string, " .. _M.got(fname)) end
  if type(allowed) ~= "table" then
    _M.argument("errors.options", 4, "allowed", "must be a table, " .. _M.got(allowed))
  end
  if where ~= nil and type(where) ~= "string" then
    _M.argument("errors.options", 5, "where", "must be a string, " .. _M.got(where))
  end
  where = where or "opts"
  if opts == nil then return {} end
  if type(opts) ~= "table" then _M.argument(fname, n, where, "must be a table, " .. _M.got(opts)) end
  local found = false
  for k, v in pairs(opts) do
    if option_problem(allowed, k, v) then found = true; break end
  end
  if not found then return opts end
  local names = {}
  for k in pairs(opts) do names[#names + 1] = k end
  sort(names, by_name)
  for _, k in ipairs(names) do    -- unknown names first, then wrong types
    if not allowed[k] then _M.argument(fname, n, where .. "." .. tostring(k), "is not an option of " .. fname) end
  end
  for _, k in ipairs(names) do
    local want = option_problem(allowed, k, opts[k])
    if want then _M.argument(fname, n, where .. "." .. tostring(k), "must be a " .. want .. ", " .. _M.got(opts[k])) end
  end
  return opts
end

--- The type name used in misuse messages ("got nil", "got table").
function _M.got(v)
  if v == "" then return "got ''" end
  return "got " .. type(v)
end

return _M
