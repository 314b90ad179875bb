--- The result shapes of the listings: exactly the fields the reference
-- documents, typed by objstore.xml (sizes and counts integers, flags
-- booleans), whatever else a server sends. Ceph, Swift and OSS add
-- elements of their own; were the parsed XML returned as it is, a program
-- would come to read one of them and break on the next store. The fields
-- are botocore's (snake_case), and OSS's own where it documents more
-- (an object's `type`, `restore_info`, `transition_time`).
--
--   shapes.pick(t, shapes.LIST_V2) -> a new table with those fields only
local type, ipairs, pairs = type, ipairs, pairs

local _M = {}

-- A shape: names of plain fields (array part), and fields that are tables
-- of their own: `name = shape` (one table) or `name = { list = shape }`
-- (an array of such tables).
local function list(shape) return { list = shape } end

local OWNER = { "id", "display_name" }
local PREFIX = { "prefix" }
local RESTORE = { "is_restore_in_progress", "restore_expiry_date" }

_M.OBJECT = { "key", "last_modified", "etag", "size", "storage_class", "checksum_algorithm", "checksum_type",
  "type", "restore_info", "transition_time", owner = OWNER, restore_status = RESTORE }

local LIST_COMMON = { "name", "prefix", "delimiter", "max_keys", "is_truncated", "encoding_type", "request_id",
  contents = list(_M.OBJECT), common_prefixes = list(PREFIX) }

local function extend(base, more)
  local out = {}
  for k, v in pairs(base) do if type(k) ~= "number" then out[k] = v end end
  for _, v in ipairs(base) do out[#out + 1] = v end
  for _, v in ipairs(more) do out[#out + 1] = v end
  return out
end

--- ListObjectsV2: one page.
_M.LIST_V2 = extend(LIST_COMMON, { "key_count", "continuation_token", "next_continuation_token", "start_after" })

--- ListObjects (v1): one page.
_M.LIST_V1 = extend(LIST_COMMON, { "marker", "next_marker" })

_M.VERSION = { "key", "version_id", "is_latest", "last_modified", "etag", "size", "storage_class",
  "checksum_algorithm", "checksum_type", "type", owner = OWNER, restore_status = RESTORE }
_M.DELETE_MARKER = { "key", "version_id", "is_latest", "last_modified", owner = OWNER }

--- ListObjectVersions: one page.
_M.VERSIONS = { "name", "prefix", "delimiter", "key_marker", "version_id_marker", "next_key_marker",
  "next_version_id_marker", "max_keys", "is_truncated", "encoding_type", "request_id",
  versions = list(_M.VERSION), delete_markers = list(_M.DELETE_MARKER), common_prefixes = list(PREFIX) }

_M.UPLOAD = { "key", "upload_id", "initiated", "storage_class", "checksum_algorithm", initiator = OWNER,
  owner = OWNER }

--- ListMultipartUploads: one page.
_M.UPLOADS = { "bucket", "prefix", "delimiter", "key_marker", "upload_id_marker", "next_key_marker",
  "next_upload_id_marker", "max_uploads", "is_truncated", "encoding_type", "request_id",
  uploads = list(_M.UPLOAD), common_prefixes = list(PREFIX) }

_M.PART = { "part_number", "last_modified", "etag", "size", "checksum_crc32", "checksum_crc32c",
  "checksum_crc64nvme", "checksum_sha1", "checksum_sha256" }

--- ListParts: one page (or every page, list_parts' call).
_M.PARTS = { "bucket", "key", "upload_id", "part_number_marker", "next_part_number_marker", "max_parts",
  "is_truncated", "storage_class", "checksum_algorithm", "request_id", initiator = OWNER, owner = OWNER,
  parts = list(_M.PART) }

--- A new table holding the fields of `shape` that `t` has (tables
-- picked again by their own shape; a list field always an array, empty
-- when `t` has none).
local function pick(t, shape)
  local out = {}
  if type(t) ~= "table" then return out end
  for _, name in ipairs(shape) do
    local v = t[name]
    if type(v) ~= "table" then
      out[name] = v
    else -- a repeated element (ChecksumAlgorithm): its strings
      local vs = {}
      for _, s in ipairs(v) do if type(s) ~= "table" then vs[#vs + 1] = s end end
      out[name] = vs
    end
  end
  for name, sub in pairs(shape) do
    if type(name) == "string" then
      local v = t[name]
      if sub.list then
        local items = {}
        for i, item in ipairs(type(v) == "table" and v or {}) do items[i] = pick(item, sub.list) end
        out[name] = items
      elseif type(v) == "table" then
        out[name] = pick(v, sub)
      end
    end
  end
  return out
end
_M.pick = pick

return _M
