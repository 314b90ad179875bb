--- The housekeeping of multipart uploads begun and never finished: list
-- them, abort them (all, older than some age, under a prefix).
local errors = require "objstore.errors"
local common = require "objstore.ops.common"
local clock = require "objstore.clock"

local type, ipairs, tostring = type, ipairs, tostring

--- list_incomplete_uploads(bucket, prefix) -> { { key, upload_id, initiated }, ... } | nil, err
-- Every upload begun and not finished (all pages), only those under
-- `prefix` (nil: all), whatever the store answered.
-- errors: TruncatedListing, PaginationLoop, and those of the listing.
local function list_incomplete_uploads(c, bucket, prefix)
  common.bucket(c, "list_incomplete_uploads", 1, bucket)
  local out, key_marker, id_marker, seen = {}, nil, nil, {}
  repeat
    local page, err = c:list_multipart_uploads(bucket, { prefix = prefix, key_marker = key_marker,
      upload_id_marker = id_marker })
    if not page then return nil, err end
    -- Only uploads below the prefix, whatever the store answered: the
    -- caller may abort every one of them.
    for _, u in ipairs(page.uploads) do
      if not prefix or (type(u.key) == "string" and u.key:sub(1, #prefix) == prefix) then out[#out + 1] = u end
    end
    key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker
    if page.is_truncated then
      if not key_marker or key_marker == "" then
        return nil, errors.failure("ListMultipartUploads", "TruncatedListing",
          "the listing is truncated but gives no NextKeyMarker", bucket, nil, { retryable = false })
      end
      local mark = key_marker .. "\0" .. tostring(id_marker)
      if seen[mark] then
        return nil, errors.failure("ListMultipartUploads", "PaginationLoop",
          "The same next marker was received twice: " .. key_marker, bucket, nil, { retryable = false })
      end
      seen[mark] = true
    end
  until not page.is_truncated
  return out
end

--- abort_incomplete_uploads(bucket, opts) -> { aborted, errors } | nil, err
-- Aborts the uploads begun and not finished.
-- opts.older_than: only uploads begun at least this many seconds ago.
-- opts.prefix: only uploads of keys under this prefix.
-- result.aborted: how many were aborted.
-- result.errors: the errors of the aborts that failed (each names its key).
local function abort_incomplete_uploads(c, bucket, opts)
  common.bucket(c, "abort_incomplete_uploads", 1, bucket)
  opts = common.opts("abort_incomplete_uploads", 2, opts, { older_than = true, prefix = true })
  local list, err = list_incomplete_uploads(c, bucket, opts.prefix)
  if not list then return nil, err end
  local now = c:now()
  local result = { aborted = 0, errors = {} }
  for _, u in ipairs(list) do
    local started = clock.parse(u.initiated)
    if not opts.older_than or (started and now - started >= opts.older_than) then
      local aok, aerr = c:abort_multipart_upload(bucket, u.key, u.upload_id)
      if aok then
        result.aborted = result.aborted + 1
      else
        result.errors[#result.errors + 1] = aerr
      end
    end
  end
  return result
end

return {
  list_incomplete_uploads = { call = list_incomplete_uploads },
  abort_incomplete_uploads = { call = abort_incomplete_uploads },
}
