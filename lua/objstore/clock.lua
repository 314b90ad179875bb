--- Time helpers: HTTP dates to epoch seconds without the local time zone,
-- and the clock-skew rule the client applies to server Date headers.
local type, tonumber = type, tonumber
local floor = math.floor

local _M = {}

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }

--- Epoch seconds of a UTC civil time (days_from_civil).
function _M.epoch(y, m, d, hh, mm, ss)
  y = (m <= 2) and (y - 1) or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return (era * 146097 + doe - 719468) * 86400 + hh * 3600 + mm * 60 + ss
end

--- "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 7231 IMF-fixdate) -> epoch | nil.
-- Also ISO 8601 "2024-01-15T08:30:00.000Z" (S3 XML dates).
function _M.parse(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, hh, mm, ss = s:match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if d and MONTHS[mon] then
    return _M.epoch(tonumber(y), MONTHS[mon], tonumber(d), tonumber(hh), tonumber(mm), tonumber(ss))
  end
  local Y, M, D, h, m2, sec = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)")
  if Y then
    return _M.epoch(tonumber(Y), tonumber(M), tonumber(D), tonumber(h), tonumber(m2), tonumber(sec))
  end
  return nil
end

--- Epoch seconds of an ISO 8601 time with an optional UTC offset
-- ("2024-01-15T08:30:00Z", "2024-01-15T10:30:00+02:00"): credentials
-- endpoints' Expiration fields; nil for anything else.
function _M.parse_iso8601(s)
  if type(s) ~= "string" then return nil end
  local t = _M.parse(s)
  if not t then return nil end
  local sign, hh, mm = s:match("([+-])(%d%d):?(%d%d)$")
  if sign and s:find("T%d%d:%d%d:%d%d") then
    local off = tonumber(hh) * 3600 + tonumber(mm) * 60
    t = sign == "+" and (t - off) or (t + off)
  end
  return t
end

--- Skew beyond which the client corrects its clock from a server Date
-- header: S3 rejects requests more than 15 minutes off; correcting from
-- 5 minutes on keeps a margin while ignoring ordinary drift and latency.
_M.SKEW_THRESHOLD = 300

--- The largest offset ever adopted: a server whose Date is further off
-- than a day from the local clock is broken or hostile, not skewed.
_M.MAX_SKEW = 86400

--- The error codes by which a server refuses a request for its time: the
-- only answers the client corrects its clock from.
_M.SKEW_CODES = { RequestTimeTooSkewed = true, RequestExpired = true, RequestTimeExpired = true }

--- The offset (server - local, seconds) to adopt given a server Date header,
-- or nil when the local clock is close enough (`always`: any offset) or the
-- Date is unreadable or more than MAX_SKEW away.
function _M.skew_from(date_header, local_now, always)
  local server = _M.parse(date_header)
  if not server then return nil end
  local off = server - local_now
  if off ~= off or off > _M.MAX_SKEW or off < -_M.MAX_SKEW then return nil end
  if always or off > _M.SKEW_THRESHOLD or off < -_M.SKEW_THRESHOLD then return off end
  return nil
end

return _M
