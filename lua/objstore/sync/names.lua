--- Names in a sync: remote prefixes, relative names, the checks that keep
-- a remote key from escaping a local destination, Unicode composition,
-- and the storage classes that cannot be read without a restore.
local pairs_nfc = require "objstore.sync.nfc_pairs"

local type, tostring, tonumber = type, tostring, tonumber
local floor = math.floor

local _M = {}

--- The listing prefix for a remote root: "" or ending in "/", so "p"
-- never matches its sibling "p2/".
function _M.prefix(p)
  if p == nil or p == "" then return "" end
  if p:sub(-1) ~= "/" then p = p .. "/" end
  return p
end

-- A UTF-8 character (ASCII or a lead byte and its continuation bytes)
-- followed by one combining mark U+0300..U+036F (CC 80..CD AF).
local PAIR = "([%z\1-\127\194-\244][\128-\191]*)([\204\205][\128-\191])"

--- NFC for the compositions that occur in practice: a base letter and
-- combining marks (macOS and some tools write names decomposed, NFD).
-- Repeated so a letter with two marks composes in two steps. Names
-- without combining marks are returned unchanged at once.
function _M.nfc(s)
  if not s:find("[\204\205]") then return s end
  while true do
    local changed = false
    s = s:gsub(PAIR, function(base, mark)
      local c = pairs_nfc[base .. mark]
      if c then
        changed = true
        return c
      end
    end)
    if not changed then return s end
  end
end

--- Why a relative name must not be written below a local root, or nil:
-- it would escape it or is not a portable file name.
function _M.hostile(rel)
  if rel == "" then return "empty name" end
  if rel:find("%z") then return "NUL in name" end
  if rel:find("\\", 1, true) then return "backslash in name" end
  if rel:sub(1, 1) == "/" then return "absolute path" end
  if rel:find("^%a:") then return "drive letter" end
  for seg in (rel .. "/"):gmatch("([^/]*)/") do
    if seg == ".." then return "'..' segment" end
    if seg == "." then return "'.' segment" end
    if seg == "" then return "empty segment" end
  end
  return nil
end

--- Storage classes whose objects need a restore before a GET.
_M.ARCHIVED = { GLACIER = true, DEEP_ARCHIVE = true, Archive = true, ColdArchive = true, DeepColdArchive = true }

--- The modification time stored in metadata: whole seconds, as rclone's
-- `mtime` (which also writes fractions: they are read and truncated).
function _M.mtime_string(t)
  return tostring(floor(t))
end

-- Anything else (written by another tool or by hand: "1e300", "nan",
-- "inf", "0x10", a time past the year 5000) is no mtime: a file's times
-- can only be set to a whole number a time_t holds.
local MTIME_MAX = 1e11

function _M.parse_mtime(v)
  if type(v) ~= "string" or not v:find("^%-?%d+%.?%d*$") then return nil end
  local n = tonumber(v)
  if not n or n ~= n or n > MTIME_MAX or n < -MTIME_MAX then return nil end
  return floor(n)
end

--- Seconds since the epoch of an ISO 8601 UTC time as listings give it
-- ("2024-01-02T03:04:05.000Z"), or of an HTTP date (RFC 7231).
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

function _M.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, se = s:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if not y then
    local dd, mon, yy, hh, mm, ss = s:match("^%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+)")
    if not dd or not MONTHS[mon] then return nil end
    y, mo, d, h, mi, se = yy, MONTHS[mon], dd, hh, mm, ss
  end
  return days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60
    + tonumber(se)
end

return _M
