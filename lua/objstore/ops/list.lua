--- Listing: objects (v2 and v1), object versions, with an iterator that
-- pages transparently. Listings ask for EncodingType=url and decode it, as
-- boto3 does, so keys with characters XML cannot carry come back intact.
local common = require "objstore.client.common"

local type, ipairs, pairs = type, ipairs, pairs

local LIST_OPTS = { prefix = true, delimiter = true, start_after = true, continuation_token = true,
  max_keys = true, fetch_owner = true, encoding_type = true }

return function(Client)
  local function list_result(self, res, op)
    local t, err = self:_parse_xml(res, op)
    if not t then return nil, err end
    t.request_id = self:_request_id(res)
    t.contents = t.contents or {}
    t.common_prefixes = t.common_prefixes or {}
    return t
  end

  --- list_objects(bucket, opts) -> ListObjectsV2 result | nil, err
  -- result: contents = {{key, size, etag, last_modified, storage_class}, ...},
  -- common_prefixes = {{prefix=}, ...}, is_truncated, next_continuation_token, ...
  function Client:list_objects(bucket, opts)
    common.check_bucket("list_objects", bucket)
    opts = common.check_opts("list_objects", opts, LIST_OPTS)
    local q = { ["list-type"] = "2", ["encoding-type"] = opts.encoding_type or "url" }
    if opts.encoding_type == false then q["encoding-type"] = nil end
    q.prefix, q.delimiter, q["start-after"] = opts.prefix, opts.delimiter, opts.start_after
    q["continuation-token"], q["max-keys"] = opts.continuation_token, opts.max_keys
    if opts.fetch_owner then q["fetch-owner"] = "true" end
    return self:_call{ name = "ListObjectsV2", method = "GET", bucket = bucket, query = q,
      parse = function(res, op) return list_result(self, res, op) end }
  end

  --- list_objects_v1(bucket, opts) -> ListObjects (v1) result, for servers without v2.
  -- opts: prefix, delimiter, marker, max_keys.
  function Client:list_objects_v1(bucket, opts)
    common.check_bucket("list_objects_v1", bucket)
    opts = common.check_opts("list_objects_v1", opts, { prefix = true, delimiter = true, marker = true,
      max_keys = true, encoding_type = true })
    local q = { ["encoding-type"] = opts.encoding_type or "url", prefix = opts.prefix, delimiter = opts.delimiter,
      marker = opts.marker, ["max-keys"] = opts.max_keys }
    if opts.encoding_type == false then q["encoding-type"] = nil end
    return self:_call{ name = "ListObjects", method = "GET", bucket = bucket, query = q,
      parse = function(res, op)
        local t, err = list_result(self, res, op)
        if not t then return nil, err end
        -- Without a delimiter v1 omits NextMarker: the last key is the marker.
        if t.is_truncated and not t.next_marker and #t.contents > 0 then
          t.next_marker = t.contents[#t.contents].key
        end
        return t
      end }
  end

  --- list_objects_iter(bucket, opts) -> iterator over objects (and, with a
  -- delimiter, common prefixes as { prefix = ..., is_prefix = true }).
  -- On a failure the iterator yields `false, err` once, then stops:
  --   for obj, err in client:list_objects_iter("b", {prefix = "logs/"}) do
  --     if not obj then error(err) end
  --   end
  -- opts.v1 = true pages with ListObjects v1 (servers without v2).
  function Client:list_objects_iter(bucket, opts)
    common.check_bucket("list_objects_iter", bucket)
    opts = opts or {}
    if type(opts) ~= "table" then
      require("objstore.errors").argument("list_objects_iter", "opts must be a table", 2)
    end
    local v1 = opts.v1
    local page_opts = {}
    for k, v in pairs(opts) do if k ~= "v1" then page_opts[k] = v end end
    local buffer, i, done, failed = {}, 1, false, false
    local function fetch()
      local page, err
      if v1 then
        page, err = self:list_objects_v1(bucket, page_opts)
      else
        page, err = self:list_objects(bucket, page_opts)
      end
      if not page then return nil, err end
      buffer, i = {}, 1
      for _, c in ipairs(page.contents) do buffer[#buffer + 1] = c end
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
  end

  --- list_object_versions(bucket, opts) -> { versions, delete_markers, common_prefixes, ... }
  function Client:list_object_versions(bucket, opts)
    common.check_bucket("list_object_versions", bucket)
    opts = common.check_opts("list_object_versions", opts, { prefix = true, delimiter = true, key_marker = true,
      version_id_marker = true, max_keys = true, encoding_type = true })
    local q = { versions = true, ["encoding-type"] = opts.encoding_type or "url", prefix = opts.prefix,
      delimiter = opts.delimiter, ["key-marker"] = opts.key_marker,
      ["version-id-marker"] = opts.version_id_marker, ["max-keys"] = opts.max_keys }
    if opts.encoding_type == false then q["encoding-type"] = nil end
    return self:_call{ name = "ListObjectVersions", method = "GET", bucket = bucket, query = q,
      parse = function(res, op)
        local t, err = self:_parse_xml(res, op)
        if not t then return nil, err end
        t.versions = t.version or {}
        t.delete_markers = t.delete_marker or {}
        t.common_prefixes = t.common_prefixes or {}
        t.request_id = self:_request_id(res)
        return t
      end }
  end
end
