--- Listing: objects (v2 and v1), object versions, and an iterator that
-- pages transparently. Listings ask for EncodingType=url and decode it, as
-- boto3 does, so keys with characters XML cannot carry come back intact.
local common = require "objstore.ops.common"
local request = require "objstore.request"
local response = require "objstore.response"

local ipairs, pairs = ipairs, pairs

local ops = {}

--- The shared shape of a listing request: `q` plus encoding-type=url
-- unless opts.encoding_type is false; `shape(t)` finishes the parsed page.
local function listing(c, op, bucket, q, opts, shape)
  q["encoding-type"] = opts.encoding_type or "url"
  if opts.encoding_type == false then q["encoding-type"] = nil end
  return request.new{ op = op, method = "GET", bucket = bucket, query = q, parse = function(res, req)
    local t, err = response.xml(res, req)
    if not t then return nil, err end
    t.request_id = response.request_id(c.dialect, res)
    t.common_prefixes = t.common_prefixes or {}
    if shape then shape(t) end
    return t
  end }
end

local LIST_OPTS = { prefix = true, delimiter = true, start_after = true, continuation_token = true,
  max_keys = true, fetch_owner = true, encoding_type = true }

--- list_objects(bucket, opts) -> ListObjectsV2 result | nil, err
-- result: contents = {{key, size, etag, last_modified, storage_class}, ...},
-- common_prefixes = {{prefix=}, ...}, is_truncated, next_continuation_token, ...
ops.list_objects = { build = function(c, bucket, opts)
  common.bucket(c, "list_objects", 1, bucket)
  opts = common.opts("list_objects", 2, opts, LIST_OPTS)
  local q = { ["list-type"] = "2", prefix = opts.prefix, delimiter = opts.delimiter,
    ["start-after"] = opts.start_after, ["continuation-token"] = opts.continuation_token,
    ["max-keys"] = opts.max_keys, ["fetch-owner"] = opts.fetch_owner and "true" or nil }
  return listing(c, "ListObjectsV2", bucket, q, opts, function(t) t.contents = t.contents or {} end)
end }

--- list_objects_v1(bucket, opts) -> ListObjects (v1) result, for servers without v2.
-- opts: prefix, delimiter, marker, max_keys.
ops.list_objects_v1 = { build = function(c, bucket, opts)
  common.bucket(c, "list_objects_v1", 1, bucket)
  opts = common.opts("list_objects_v1", 2, opts, { prefix = true, delimiter = true, marker = true,
    max_keys = true, encoding_type = true })
  local q = { prefix = opts.prefix, delimiter = opts.delimiter, marker = opts.marker, ["max-keys"] = opts.max_keys }
  return listing(c, "ListObjects", bucket, q, opts, function(t)
    t.contents = t.contents or {}
    -- Without a delimiter v1 omits NextMarker: the last key is the marker.
    if t.is_truncated and not t.next_marker and #t.contents > 0 then
      t.next_marker = t.contents[#t.contents].key
    end
  end)
end }

--- list_objects_iter(bucket, opts) -> iterator over objects (and, with a
-- delimiter, common prefixes as { prefix = ..., is_prefix = true }).
-- On a failure the iterator yields `false, err` once, then stops:
--   for obj, err in client:list_objects_iter("b", {prefix = "logs/"}) do
--     if not obj then error(err) end
--   end
-- opts.v1 = true pages with ListObjects v1 (servers without v2).
ops.list_objects_iter = { call = function(c, bucket, opts)
  common.bucket(c, "list_objects_iter", 1, bucket)
  local allowed = { v1 = true }
  for k in pairs(LIST_OPTS) do allowed[k] = true end
  allowed.marker = true
  opts = common.opts("list_objects_iter", 2, opts, allowed)
  local v1 = opts.v1
  local page_opts = {}
  for k, v in pairs(opts) do if k ~= "v1" then page_opts[k] = v end end
  local buffer, i, done, failed = {}, 1, false, false
  local function fetch()
    local page, err = c:send(ops[v1 and "list_objects_v1" or "list_objects"].build(c, bucket, page_opts))
    if not page then return nil, err end
    buffer, i = {}, 1
    for _, o in ipairs(page.contents) do buffer[#buffer + 1] = o end
    for _, p in ipairs(page.common_prefixes) do buffer[#buffer + 1] = { prefix = p.prefix, is_prefix = true } end
    if page.is_truncated then
      if v1 then
        page_opts.marker = page.next_marker
      else
        page_opts.continuation_token = page.next_continuation_token
      end
      done = not (page.next_marker or page.next_continuation_token)
    else
      done = true
    end
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

--- list_object_versions(bucket, opts) -> { versions, delete_markers, common_prefixes, ... }
ops.list_object_versions = { build = function(c, bucket, opts)
  common.bucket(c, "list_object_versions", 1, bucket)
  opts = common.opts("list_object_versions", 2, opts, { prefix = true, delimiter = true, key_marker = true,
    version_id_marker = true, max_keys = true, encoding_type = true })
  local q = { versions = true, prefix = opts.prefix, delimiter = opts.delimiter, ["key-marker"] = opts.key_marker,
    ["version-id-marker"] = opts.version_id_marker, ["max-keys"] = opts.max_keys }
  return listing(c, "ListObjectVersions", bucket, q, opts, function(t)
    t.versions = t.version or {}
    t.delete_markers = t.delete_marker or {}
  end)
end }

return ops
