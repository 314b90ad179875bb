--- Logging of objstore through a function the caller gives:
--
--   objstore.new{ log = function(level, message, fields) ... end, log_level = "info" }
--
-- Levels, most severe first: "error" (a failure that reaches the caller, a
-- hook that raised), "warn" (a retry, a fail-over), "info" (every response:
-- operation, method, bucket/key, status, request id, latency), "debug"
-- (every attempt sent; on SignatureDoesNotMatch the canonical request and
-- string to sign objstore used next to the server's). `message` is one
-- line (a debug dump spans several) starting "objstore: ", its control
-- characters escaped (`escape_control`: a server's message cannot forge a
-- line); `fields` is a flat table of the same facts, values as they are.
-- The pipeline (objstore.engine.pipeline) logs from the one place it raises
-- its events.
--
-- Nothing logged carries a secret key, a session token, an SSE-C key or a
-- signature: `redact` replaces them with "<redacted>" in every string that
-- could hold one (canonical requests, strings to sign, header dumps).
--
-- In OpenResty: `log = require("objstore.log").ngx()` (ngx.ERR, ngx.WARN,
-- ngx.INFO, ngx.DEBUG), or any `function(level, msg) ngx.log(ngx.ERR, msg) end`.
local errors = require "objstore.errors"
local core = require "objstore.core"

local type, pairs, ipairs, tostring, tonumber, pcall, rawget, select, setmetatable =
  type, pairs, ipairs, tostring, tonumber, pcall, rawget, select, setmetatable
local string_format, string_char, concat = string.format, string.char, table.concat
local _G = _G

local _M = { _VERSION = core._VERSION }

local LEVELS = { error = 1, warn = 2, info = 3, debug = 4 }
_M.LEVELS = LEVELS

local REDACTED = "<redacted>"
_M.REDACTED = REDACTED

--- A case-insensitive Lua pattern for the literal `s` (letters only are
-- doubled; '-' is escaped).
local function nocase(s)
  return (s:gsub("%a", function(c) return "[" .. c:upper() .. c:lower() .. "]" end):gsub("%-", "%%-"))
end

-- Names whose value is a secret wherever it appears: as a header line of a
-- canonical request or string to sign ("name:value"), a header dump
-- ("Name: value") or a query parameter ("name=value").
-- ("security-token" covers X-Amz-Security-Token and x-oss-security-token.)
local SECRET_NAMES = { nocase("security-token"), nocase("server-side-encryption-customer-key") }
local SIGNATURE = nocase("signature")
local AUTH_V1 = { nocase("OSS") .. " ", nocase("AWS") .. " " }
local AUTHORIZATION = nocase("authorization")

--- `s` with secret values replaced by "<redacted>": session tokens
-- (X-Amz-Security-Token, x-oss-security-token), SSE-C keys
-- (*-server-side-encryption-customer-key, not their MD5), signatures
-- (Signature=, X-Amz-Signature=, x-oss-signature=, the OSS/AWS V1
-- "OSS ak:signature" form) and an Authorization header's signature part.
-- Anything that is not a string is returned as it is.
function _M.redact(s)
  if type(s) ~= "string" then return s end
  for i = 1, #SECRET_NAMES do
    local name = SECRET_NAMES[i]
    -- "name:value" / "Name: value" up to the end of the line; "name=value"
    -- up to the next parameter. The name must end there ("-md5" is kept).
    s = s:gsub("(" .. name .. ")([ \t]*:[ \t]*)[^\r\n]*", "%1%2" .. REDACTED)
    s = s:gsub("(" .. name .. "=)[^&%s\"'<]*", "%1" .. REDACTED)
  end
  -- Signature=..., X-Amz-Signature=..., x-oss-signature=...
  s = s:gsub("(" .. SIGNATURE .. "=)[^,&%s\"'<]*", "%1" .. REDACTED)
  -- "Authorization: OSS ak:sig" / "AWS ak:sig" (V1 and S3 V2).
  for i = 1, #AUTH_V1 do
    local prefix = "(" .. AUTHORIZATION .. "[\"']?%s*[:=]%s*[\"']?" .. AUTH_V1[i] .. "[^:%s]+:)"
    s = s:gsub(prefix .. "[^%s,\"'<]+", "%1" .. REDACTED)
  end
  return s
end

local function pattern_escape(v)
  return (v:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local function percent(v, fmt)
  return (v:gsub("[^%w%-%._~]", function(c) return string_format(fmt, c:byte()) end))
end

--- A function(s) -> s that replaces, in text a server sent back, each of
-- `values` (secret keys, session tokens, SSE-C keys: the client knows what
-- it sent) by "<redacted>", in the forms a server may echo them: as they
-- are, percent-encoded (either case), JSON-escaped ("\/"), hex (either
-- case), base64-encoded (also inside longer base64 text, unpadded, base64url),
-- and for an SSE-C key header value (base64) the raw key too. Values shorter
-- than 8 bytes are left out (they would mangle ordinary text). The values
-- live only in the function's upvalues.
function _M.value_redactor(values, base64_values)
  if values ~= nil and type(values) ~= "table" then
    errors.argument("log.value_redactor", 1, "values", "must be a list of strings or nil, " .. errors.got(values))
  end
  if base64_values ~= nil and type(base64_values) ~= "table" then
    errors.argument("log.value_redactor", 2, "base64_values", "must be a list of strings or nil, "
      .. errors.got(base64_values))
  end
  local forms, seen = {}, {}
  local function add(v)
    if type(v) == "string" and #v >= 8 and not seen[v] then
      seen[v] = true
      forms[#forms + 1] = v
    end
  end
  local b64 = core.encode.base64_encode
  local function each(v)
    if type(v) ~= "string" or #v < 8 then return end
    add(v)
    add(percent(v, "%%%02X"))
    add(percent(v, "%%%02x"))
    add((v:gsub("/", "\\/")))
    add(b64(v))
    -- Inside a longer base64 text ("Basic " .. b64(ak .. ":" .. secret)),
    -- without its padding, or base64url: the characters that come from
    -- whole 3-byte groups of `v` alone, for each of the 3 alignments `v`
    -- can have there (at most 2 bytes at either end stay visible).
    for skip = 0, 2 do
      local body = v:sub(skip + 1)
      body = body:sub(1, #body - #body % 3)
      if #body >= 6 then
        local e = b64(body)
        add(e)
        add((e:gsub("[+/]", { ["+"] = "-", ["/"] = "_" })))
      end
    end
    -- hex, either case
    local hex = v:gsub(".", function(c) return string_format("%02x", c:byte()) end)
    add(hex)
    add(hex:upper())
  end
  for _, v in pairs(values or {}) do each(v) end
  for _, v in pairs(base64_values or {}) do
    each(v)
    if type(v) == "string" then
      local ok, raw = pcall(core.encode.base64_decode, v)
      if ok and type(raw) == "string" then each(raw) end
    end
  end
  table.sort(forms, function(a, b) return #a > #b end)
  local pats = {}
  for i, f in ipairs(forms) do pats[i] = pattern_escape(f) end
  return function(text)
    if type(text) ~= "string" then return text end
    for i = 1, #pats do
      if text:find(forms[i], 1, true) then text = text:gsub(pats[i], REDACTED) end
    end
    return text
  end
end

--- Applies `redactor` (value_redactor) to every string of an error value:
-- its fields and, one level down, tables of server fields (err.server).
function _M.scrub_error(err, redactor)
  if redactor ~= nil and type(redactor) ~= "function" then
    errors.argument("log.scrub_error", 2, "redactor", "must be a function or nil, " .. errors.got(redactor))
  end
  if type(err) ~= "table" or not redactor then return err end
  local function walk(t, depth)
    for k, v in pairs(t) do
      if type(v) == "string" then
        t[k] = redactor(v)
      elseif type(v) == "table" and depth < 3 and k ~= "error" then
        walk(v, depth + 1)
      end
    end
  end
  walk(err, 1)
  return err
end

local CONTROL_NAMES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function control_escape(c)
  return CONTROL_NAMES[c] or string_format("\\x%02x", c:byte())
end
local function c1_escape(c)
  return string_format("\\xc2\\x%02x", c:byte(2))
end
-- The bidirectional controls (U+061C, U+200E/U+200F, U+202A..U+202E,
-- U+2066..U+2069): invisible, and they reorder what follows them on the
-- line, so a key named "\u{202E}fdp.exe" shows as "exe.pdf".
local BIDI = { ["\226\128\142"] = true, ["\226\128\143"] = true,
  ["\226\128\170"] = true, ["\226\128\171"] = true, ["\226\128\172"] = true, ["\226\128\173"] = true,
  ["\226\128\174"] = true, ["\226\129\166"] = true, ["\226\129\167"] = true, ["\226\129\168"] = true,
  ["\226\129\169"] = true }
local function bidi_escape(c)
  if not BIDI[c] then return c end
  local out = {}
  for i = 1, #c do out[i] = string_format("\\x%02x", c:byte(i)) end
  return table.concat(out)
end

--- `s` with every control character written out, so that text a server
-- chose (an error message, a key) cannot forge a log line or drive a
-- terminal: C0 controls and DEL become `\n`, `\r`, `\t` or `\xHH` (ESC is
-- `\x1b`), the UTF-8 C1 controls U+0080..U+009F `\xc2\xHH`, and the
-- bidirectional controls (U+202E and the like) their bytes as `\xHH`. Other
-- bytes, backslashes included, are kept. `keep_newlines` leaves "\n" as it
-- is (multi-line debug dumps). Anything that is not a string is returned as
-- it is.
function _M.escape_control(s, keep_newlines)
  if type(s) ~= "string" then return s end
  s = s:gsub(keep_newlines and "[%z\1-\9\11-\31\127]" or "[%z\1-\31\127]", control_escape)
  s = s:gsub("\194[\128-\159]", c1_escape)
  if s:find("[\216\226]") then
    s = s:gsub("\216\156", "\\xd8\\x9c")
    s = s:gsub("\226[\128\129][\128-\191]", bidi_escape)
  end
  return s
end
local escape_control = _M.escape_control

local function field(v)
  if v == nil then return nil end
  return tostring(v)
end

local function where(e)
  if e.bucket == nil then return "" end
  return " " .. tostring(e.bucket) .. (e.key ~= nil and ("/" .. tostring(e.key)) or "")
end

local function head(e)
  return "objstore: " .. tostring(e.op) .. " " .. tostring(e.method) .. where(e)
end

local function rid(e)
  return e.request_id and (" [request " .. tostring(e.request_id) .. "]") or ""
end

local function seconds(v)
  v = tonumber(v)
  if not v then return "?" end
  return string_format("%.3f s", v)
end

--- The flat fields of an event: what it says, the error as code and
-- message (never the error table itself), strings and numbers only.
local function fields_of(e, extra)
  local f = {}
  for k, v in pairs(e) do
    local t = type(v)
    if t == "string" or t == "number" or t == "boolean" then f[k] = v end
  end
  local err = e.error
  if type(err) == "table" then
    f.code = f.code or field(err.code)
    f.message = field(err.message)
    f.status = f.status or err.status
    f.retryable = err.retryable
  end
  for k, v in pairs(extra or {}) do f[k] = v end
  return f
end

-- The level each event is logged at, and its message.
local EVENT_LEVEL = { on_request = "debug", on_response = "info", on_retry = "warn", on_failover = "warn",
  on_error = "error" }
local FORMAT = {
  on_request = function(e)
    return head(e) .. ": sending to " .. tostring(e.endpoint) .. " (attempt " .. tostring(e.attempt) .. ")"
  end,
  on_response = function(e)
    local outcome = e.status and tostring(e.status) or tostring(e.code or "no answer")
    if e.status and e.code then outcome = outcome .. " " .. tostring(e.code) end
    return head(e) .. ": " .. outcome .. " in " .. seconds(e.latency) .. " (attempt "
      .. tostring(e.attempt) .. ")" .. rid(e)
  end,
  on_retry = function(e)
    return head(e) .. ": " .. tostring(e.reason) .. ", retrying in " .. seconds(e.delay) .. " (attempt "
      .. tostring(e.attempt) .. " failed)" .. rid(e)
  end,
  on_failover = function(e)
    return head(e) .. ": failing over from " .. tostring(e.from) .. " to " .. tostring(e.to)
      .. " (attempt " .. tostring(e.attempt) .. ")"
  end,
  on_error = function(e)
    local err = e.error
    local attempts = type(err) == "table" and err.attempts
    return "objstore: " .. tostring(err) .. (attempts and (" (after " .. tostring(attempts)
      .. (attempts == 1 and " attempt)" or " attempts)")) or "")
  end,
}

local Logger = {}
Logger.__index = Logger

--- A logger for `fn` at `level` ("error", "warn", "info", "debug"; default
-- "warn"), or nil when fn is nil (no logging at all). Raises on misuse.
-- `fname` names the API function for misuse messages (default "log.new").
function _M.new(fn, level, fname)
  fname = fname or "log.new"
  if level ~= nil and (type(level) ~= "string" or not LEVELS[level]) then
    errors.argument(fname, 1, "opts.log_level", "must be one of 'error', 'warn', 'info', 'debug', "
      .. (type(level) == "string" and ("got '" .. level .. "'") or errors.got(level)))
  end
  if fn == nil then return nil end
  if type(fn) ~= "function" then
    errors.argument(fname, 1, "opts.log", "must be a function(level, message, fields), " .. errors.got(fn))
  end
  local n = LEVELS[level or "warn"]
  return setmetatable({ fn = fn, level = n, debug = n >= LEVELS.debug }, Logger)
end

--- Calls the user's function under pcall (a logger that raises never
-- breaks a request); the message is redacted once more on its way out.
-- Control characters in it are escaped (escape_control): one event is one
-- line, whatever a server put in its message; `multiline` keeps the line
-- breaks of a debug dump. `fields` keep their values exactly.
function Logger:write(level, message, fields, multiline)
  if LEVELS[level] > self.level then return end
  pcall(self.fn, level, escape_control(_M.redact(message), multiline), fields or {})
end

--- Logs an event of the pipeline (`name` as in client.hooks).
function Logger:event(name, e)
  local level = EVENT_LEVEL[name]
  if not level or LEVELS[level] > self.level then return end
  local f = fields_of(e, { event = name })
  f.request_id = f.request_id and field(f.request_id)
  self:write(level, FORMAT[name](e), f)
end

--- Logs a hook that raised (once per client: the caller guarantees it).
function Logger:hook_error(name, herr)
  self:write("error", "objstore: hook " .. tostring(name) .. " raised: " .. tostring(herr),
    { event = "on_hook_error", hook = name, message = _M.redact(tostring(herr)) })
end

--- Logs a failure that reached the caller without a response (credentials,
-- signing): no event is raised for those.
function Logger:failure(err)
  self:write("error", "objstore: " .. tostring(err), { event = "failure", op = field(err.op),
    bucket = field(err.bucket), key = field(err.key), code = field(err.code), message = _M.redact(field(err.message)) })
end

--- "41 57 53 34" (StringToSignBytes, CanonicalRequestBytes) as text.
local function from_bytes(b)
  if type(b) ~= "string" then return nil end
  local out = {}
  for h in b:gmatch("%x%x?") do out[#out + 1] = string_char(tonumber(h, 16)) end
  return #out > 0 and concat(out) or nil
end

local function first(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if v ~= nil and v ~= "" then return v end
  end
  return nil
end

--- Debug mode, on SignatureDoesNotMatch: the canonical request and string
-- to sign objstore used (`details` of the signer on the same input) next
-- to the server's, as its error gave them (rgw, AWS: CanonicalRequest,
-- StringToSign or the *Bytes forms), all redacted.
function Logger:signature_mismatch(e, details)
  if not self.debug then return end
  local err = e.error or {}
  local ours_cr = _M.redact(details and details.canonical_request or nil)
  local ours_sts = _M.redact(details and details.string_to_sign or nil)
  local theirs_cr = _M.redact(first(err.canonical_request, from_bytes(err.canonical_request_bytes)))
  local theirs_sts = _M.redact(first(err.string_to_sign, from_bytes(err.string_to_sign_bytes)))
  local not_given = "(not given)"
  local lines = {
    head(e) .. ": SignatureDoesNotMatch" .. rid(e),
    "objstore's canonical request:", (ours_cr ~= nil and ours_cr ~= "") and ours_cr or "(none for this algorithm)",
    "objstore's string to sign:", ours_sts or not_given,
    "server's canonical request:", theirs_cr or not_given,
    "server's string to sign:", theirs_sts or not_given,
  }
  self:write("debug", concat(lines, "\n"), fields_of(e, { event = "signature_mismatch", canonical_request = ours_cr,
    string_to_sign = ours_sts, server_canonical_request = theirs_cr, server_string_to_sign = theirs_sts }), true)
end

--- A log function for OpenResty: levels mapped to ngx.ERR, ngx.WARN,
-- ngx.INFO and ngx.DEBUG. `ngx` is looked up when this is called (the
-- module loads anywhere); outside nginx it raises.
function _M.ngx()
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.log) ~= "function" then
    errors.argument("log.ngx", nil, nil, "needs OpenResty's ngx (call it inside nginx)")
  end
  local map = { error = ngx.ERR, warn = ngx.WARN, info = ngx.INFO, debug = ngx.DEBUG }
  local ngx_log = ngx.log
  return function(level, message)
    ngx_log(map[level] or ngx.ERR, message)
  end
end

return _M
