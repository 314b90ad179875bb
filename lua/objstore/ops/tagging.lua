--- Object tagging: an object's tag set put, read and removed through the
-- `?tagging` sub-resource, one request each. S3 and OSS take the same
-- <Tagging><TagSet><Tag> document (OSS signs `tagging` as a sub-resource).
local common = require "objstore.ops.common"
local request = require "objstore.engine.request"
local response = require "objstore.engine.response"
local errors = require "objstore.errors"
local xml = require "objstore.xml"
local checksum = require "objstore.checksum"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local sort = table.sort

local ops = {}

-- The most tags an object carries (S3 and OSS alike).
local MAX_TAGS = 10

--- The tag set as XML, keys sorted (the same body for the same tags).
local function tag_set(name, tags)
  if type(tags) ~= "table" then
    common.misuse(name, 3, "tags", "must be a table of key = value, " .. errors.got(tags))
  end
  local keys = {}
  for k, v in pairs(tags) do
    if type(k) ~= "string" or k == "" then
      common.misuse(name, 3, "tags", "keys must be non-empty strings, got " .. errors.got(k))
    end
    if type(v) ~= "string" then common.misuse(name, 3, "tags." .. k, "must be a string, " .. errors.got(v)) end
    keys[#keys + 1] = k
  end
  if #keys > MAX_TAGS then common.misuse(name, 3, "tags", "has " .. #keys .. " tags: at most " .. MAX_TAGS) end
  sort(keys)
  local set = {}
  for i, k in ipairs(keys) do set[i] = { "Tag", { { "Key", k }, { "Value", tags[k] } } } end
  return set
end

local function tagging_request(c, name, fields, opts, parse)
  common.bucket(c, name, 1, fields.bucket)
  common.key(name, 2, fields.key)
  local t = { bucket = fields.bucket, key = fields.key, op = fields.op, method = fields.method,
    query = { tagging = true, versionId = opts.version_id }, headers = {}, body = fields.body }
  if t.body then
    t.headers["Content-MD5"] = checksum.md5_base64(t.body)
    t.headers["Content-Type"] = "application/xml"
    t.body_length = #t.body
  end
  t.parse = function(res, req)
    local out = {}
    if parse then
      local doc, err = response.xml(res, req)
      if not doc then return nil, err end
      out = parse(doc)
    end
    out.version_id = res.headers and res.headers[c.dialect.version_id] or nil
    out.request_id = response.request_id(c.dialect, res)
    return out
  end
  return request.new(t)
end

--- put_object_tagging(bucket, key, tags, opts) -> { version_id, request_id } | nil, err
-- Replaces the object's tags with `tags` ({ key = value }, at most 10).
-- opts.version_id: the version to tag (versioned buckets).
-- errors: NoSuchKey, InvalidTag (a key or value over the store's limits).
ops.put_object_tagging = { build = function(c, bucket, key, tags, opts)
  opts = common.opts("put_object_tagging", 4, opts, { version_id = true })
  local body = xml.build("Tagging", { { "TagSet", tag_set("put_object_tagging", tags) } }, common.namespace(c))
  return tagging_request(c, "put_object_tagging", { op = "PutObjectTagging", method = "PUT", bucket = bucket,
    key = key, body = body }, opts)
end }

--- get_object_tagging(bucket, key, opts) -> { tags, version_id, request_id } | nil, err
-- The object's tags.
-- opts.version_id: the version to read (versioned buckets).
-- result.tags: { key = value } (empty when the object has none).
-- errors: NoSuchKey.
ops.get_object_tagging = { build = function(c, bucket, key, opts)
  opts = common.opts("get_object_tagging", 3, opts, { version_id = true })
  return tagging_request(c, "get_object_tagging", { op = "GetObjectTagging", method = "GET", bucket = bucket,
    key = key }, opts, function(doc)
      local tags = {}
      local set = type(doc.tag_set) == "table" and doc.tag_set.tag or nil
      for _, t in ipairs(type(set) == "table" and set or {}) do
        if type(t) == "table" and type(t.key) == "string" then
          tags[t.key] = type(t.value) == "string" and t.value or tostring(t.value or "")
        end
      end
      return { tags = tags }
    end)
end }

--- delete_object_tagging(bucket, key, opts) -> { version_id, request_id } | nil, err
-- Removes every tag of the object.
-- opts.version_id: the version (versioned buckets).
-- errors: NoSuchKey.
ops.delete_object_tagging = { build = function(c, bucket, key, opts)
  opts = common.opts("delete_object_tagging", 3, opts, { version_id = true })
  return tagging_request(c, "delete_object_tagging", { op = "DeleteObjectTagging", method = "DELETE",
    bucket = bucket, key = key }, opts)
end }

return ops
