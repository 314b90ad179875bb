--- Listing: objects (v2 and v1), object versions, and an iterator that
-- pages transparently. Listings ask for EncodingType=url and decode it, as
-- boto3 does, so keys with characters XML cannot carry come back intact.
local common = require "objstore.ops.common"
local errors = require "objstore.errors"
local request = require "objstore.engine.request"
local response = require "objstore.engine.response"
local shapes = require "objstore.ops.shapes"

local ipairs, pairs, type = ipairs, pairs, type

local ops = {}

--- The shared shape of a listing request: `q` plus encoding-type=url
-- unless opts.encoding_type is false; `shape(t)` finishes the parsed page,
-- and the result holds the fields of `fields` (objstore.ops.shapes) only.
local function listing(c, op, bucket, q, opts, fields, shape)
  q["encoding-type"] = opts.encoding_type or "url"
  if opts.encoding_type == false then q["encoding-type"] = nil end
  return request.new{ op = op, method = "GET", bucket = bucket, query = q, parse = function(res, req)
    local t, err = response.xml(res, req)
    if not t then return nil, err end
    t.request_id = response.request_id(c.dialect, res)
    t.common_prefixes = t.common_prefixes or {}
    if shape then shape(t) end
    return shapes.pick(t, fields)
  end }
end

-- Listing options:
-- opts.prefix: only keys that start with this.
-- opts.delimiter: group keys by this ("/"): the groups come back in
--   common_prefixes.
-- opts.start_after: start after this key (v2).
-- opts.continuation_token: the next_continuation_token of the page before
--   (v2).
-- opts.marker: start after this key (v1).
-- opts.max_keys: at most this many entries a page (the server caps it at 1000).
-- opts.fetch_owner: true to list each object's owner (v2).
-- opts.encoding_type: "url" (default: keys come url-encoded and are
--   decoded), or false to ask for raw keys.
-- opts.key_marker: start after this key (versions, uploads).
-- opts.version_id_marker: with key_marker, start after this version.
local LIST_OPTS = { prefix = true, delimiter = true, start_after = true, continuation_token = true,
  max_keys = true, fetch_owner = true, encoding_type = true }

--- list_objects(bucket, opts) -> { contents, common_prefixes, is_truncated, next_continuation_token, ... } | nil, err
-- One page of ListObjectsV2 (list_objects_v1 for ListObjects v1). The
-- result holds botocore's fields in snake_case, typed (sizes and counts
-- integers, flags booleans), and nothing else a server sends
-- (objstore.ops.shapes): name, prefix, delimiter, max_keys, key_count,
-- is_truncated, continuation_token, next_continuation_token, start_after,
-- encoding_type, request_id, contents, common_prefixes.
-- result.contents: { { key, size, etag, last_modified, storage_class,
--   owner = { id, display_name } (fetch_owner), checksum_algorithm,
--   checksum_type, restore_status, and OSS's type, restore_info,
--   transition_time }, ... }, always an array.
-- result.common_prefixes: { { prefix = }, ... } (with a delimiter).
-- result.next_continuation_token: give it as opts.continuation_token for
--   the next page while is_truncated.
ops.list_objects = { build = function(c, bucket, opts)
  common.bucket(c, "list_objects", 1, bucket)
  opts = common.opts("list_objects", 2, opts, LIST_OPTS)
  local q = { ["list-type"] = "2", prefix = opts.prefix, delimiter = opts.delimiter,
    ["start-after"] = opts.start_after, ["continuation-token"] = opts.continuation_token,
    ["max-keys"] = opts.max_keys, ["fetch-owner"] = opts.fetch_owner and "true" or nil }
  return listing(c, "ListObjectsV2", bucket, q, opts, shapes.LIST_V2)
end }

--- list_objects_v1(bucket, opts) -> { contents, common_prefixes, is_truncated, next_marker, ... } | nil, err
-- One page of ListObjects (v1), for servers without v2.
-- result.next_marker: the marker of the next page (the last key when the
--   server sends none and there is no delimiter).
ops.list_objects_v1 = { build = function(c, bucket, opts)
  common.bucket(c, "list_objects_v1", 1, bucket)
  opts = common.opts("list_objects_v1", 2, opts, { prefix = true, delimiter = true, marker = true,
    max_keys = true, encoding_type = true })
  local q = { prefix = opts.prefix, delimiter = opts.delimiter, marker = opts.marker, ["max-keys"] = opts.max_keys }
  return listing(c, "ListObjects", bucket, q, opts, shapes.LIST_V1, function(t)
    t.contents = t.contents or {}
    -- Without a delimiter v1 omits NextMarker: the last key is the marker.
    -- With one, a truncated page must name it (its last entry may be a
    -- common prefix past the last key): none is left unset.
    if t.is_truncated and not t.next_marker and #t.contents > 0 and (opts.delimiter or "") == "" then
      t.next_marker = t.contents[#t.contents].key
    end
  end)
end }

--- The error of a listing that cannot go on safely: not retryable (the
-- same request would get the same answer).
local function listing_error(op, bucket, code, message)
  return errors.new{ code = code, message = message, op = op, bucket = bucket, retryable = false }
end

--- list_objects_iter(bucket, opts) -> iterator
-- An iterator over every object (and, with a delimiter, common prefixes as
-- { prefix = ..., is_prefix = true }), paging transparently. On a failure
-- it yields `false, err` once, then stops:
--   for obj, err in client:list_objects_iter("b", { prefix = "logs/" }) do
--     if not obj then error(err) end
--   end
-- A server's answers are checked as they come: a continuation token (v1:
-- marker) that this listing already sent is a PaginationLoop error, and a
-- page that says it is truncated but gives no way on is a
-- TruncatedListing error, never a silent end. With opts.prefix, an object
-- or common prefix outside the prefix is dropped, never yielded. A listed
-- key that no request can name (empty, over 1024 bytes, a NUL, not UTF-8)
-- is a MalformedResponse error.
-- opts.v1: true pages with ListObjects v1 (servers without v2).
-- errors: PaginationLoop, TruncatedListing, MalformedResponse, and those of
--   a listing request.
ops.list_objects_iter = { call = function(c, bucket, opts)
  common.bucket(c, "list_objects_iter", 1, bucket)
  local allowed = { v1 = true }
  for k in pairs(LIST_OPTS) do allowed[k] = true end
  allowed.marker = true
  opts = common.opts("list_objects_iter", 2, opts, allowed)
  local v1 = opts.v1
  local op = v1 and "ListObjects" or "ListObjectsV2"
  local page_opts = {}
  for k, v in pairs(opts) do if k ~= "v1" then page_opts[k] = v end end
  local prefix = opts.prefix or ""
  local plen = #prefix
  -- The tokens (v1: markers) sent so far: one string a page.
  local seen = {}
  local first = v1 and page_opts.marker or page_opts.continuation_token
  if first then seen[first] = true end
  local buffer, i, done, failed = {}, 1, false, false
  local function fetch()
    local page, err = c:send(ops[v1 and "list_objects_v1" or "list_objects"].build(c, bucket, page_opts))
    if not page then return nil, err end
    buffer, i = {}, 1
    for _, o in ipairs(page.contents) do
      local problem = request.key_problem(o.key)
      if problem then
        -- A key no request of objstore could name: whatever comes next
        -- (a delete, a download) could not act on it.
        return nil, listing_error(op, bucket, "MalformedResponse", "the listing holds a key objstore cannot "
          .. "address (" .. problem .. "): " .. string.format("%q", tostring(o.key):sub(1, 200)))
      end
      if o.key:sub(1, plen) == prefix then buffer[#buffer + 1] = o end
    end
    for _, p in ipairs(page.common_prefixes) do
      if type(p.prefix) == "string" and p.prefix:sub(1, plen) == prefix then
        buffer[#buffer + 1] = { prefix = p.prefix, is_prefix = true }
      end
    end
    if not page.is_truncated then
      done = true
      return true
    end
    local token = v1 and page.next_marker or page.next_continuation_token
    if token == nil or token == "" then
      return nil, listing_error(op, bucket, "TruncatedListing", "the listing page says IsTruncated=true but gives no "
        .. (v1 and "NextMarker" or "NextContinuationToken") .. ": the listing cannot go on and is incomplete")
    end
    if seen[token] then
      return nil, listing_error(op, bucket, "PaginationLoop", "The same next token was received twice: "
        .. (v1 and "marker " or "continuation token ") .. string.format("%q", token:sub(1, 200))
        .. " was already used in this listing")
    end
    seen[token] = true
    if v1 then page_opts.marker = token else page_opts.continuation_token = token end
    return true
  end
  return function()
    if failed then return nil end
    while i > #buffer do
      if done then return nil end
      local ok, err = fetch()
      if not ok then
        failed = true
        return false, err
      end
    end
    local item = buffer[i]
    i = i + 1
    return item
  end
end }

--- list_object_versions(bucket, opts) -> { versions, delete_markers, common_prefixes, is_truncated, ... } | nil, err
-- One page of ListObjectVersions.
-- result.versions: { { key, version_id, is_latest, size, etag, last_modified }, ... }.
-- result.delete_markers: { { key, version_id, is_latest, last_modified }, ... }.
-- result.next_key_marker: with next_version_id_marker, where the next page
--   starts.
ops.list_object_versions = { build = function(c, bucket, opts)
  common.bucket(c, "list_object_versions", 1, bucket)
  opts = common.opts("list_object_versions", 2, opts, { prefix = true, delimiter = true, key_marker = true,
    version_id_marker = true, max_keys = true, encoding_type = true })
  local q = { versions = true, prefix = opts.prefix, delimiter = opts.delimiter, ["key-marker"] = opts.key_marker,
    ["version-id-marker"] = opts.version_id_marker, ["max-keys"] = opts.max_keys }
  return listing(c, "ListObjectVersions", bucket, q, opts, shapes.VERSIONS, function(t)
    t.versions, t.delete_markers = t.version, t.delete_marker
  end)
end }

return ops
