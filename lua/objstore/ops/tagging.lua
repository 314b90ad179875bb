--- Object tagging: an object's tag set put, read and removed through the
-- `?tagging` sub-resource, one request each. S3 and OSS take the same
-- <Tagging><TagSet><Tag> document (OSS signs `tagging` as a sub-resource).
local common = require "objstore.ops.common"
local request = require "objstore.engine.request"
local response = require "objstore.engine.response"
local errors = require "objstore.errors"
local xml = require "objstore.xml"
local checksum = require "objstore.checksum"

local type, pairs, ipairs, tostring, pcall = type, pairs, ipairs, tostring, pcall
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
      common.misuse(name, 3, "tags", "keys must be non-empty strings, " .. errors.got(k))
    end
    if not pcall(xml.escape, k) then
      common.misuse(name, 3, "tags", "a key is not representable in XML 1.0 (NUL, invalid UTF-8, U+FFFE or U+FFFF)")
    end
    if type(v) ~= "string" then common.misuse(name, 3, "tags." .. k, "must be a string, " .. errors.got(v)) end
    if not pcall(xml.escape, v) then
      common.misuse(name, 3, "tags." .. k, "is not representable in XML 1.0 (NUL, invalid UTF-8, U+FFFE or U+FFFF)")
    end
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
      local doc, root = response.xml(res, req)
      if not doc then return nil, root end
      local why
      out, why = parse(doc, root)
      if not out then
        return nil, errors.new{ code = "MalformedResponse", retryable = false, status = res.status, op = req.op,
          bucket = req.bucket, key = req.key, message = fields.op .. " answered " .. why }
      end
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
-- errors: NoSuchKey; MalformedResponse (an answer not a Tagging of text keys and values, each once).
ops.get_object_tagging = { build = function(c, bucket, key, opts)
  opts = common.opts("get_object_tagging", 3, opts, { version_id = true })
  return tagging_request(c, "get_object_tagging", { op = "GetObjectTagging", method = "GET", bucket = bucket,
    key = key }, opts, function(doc, root)
      -- Only a <Tagging> of text keys and values, each key once: another
      -- document is not "no tags", and a value that is not text (two
      -- <Value>s) or a key given twice leaves the object's tags unknown.
      if root ~= "Tagging" then return nil, "a <" .. tostring(root) .. "> document, not a Tagging" end
      local tags = {}
      local set = doc.tag_set
      if set ~= nil and set ~= "" and type(set) ~= "table" or type(set) == "table" and set[1] ~= nil then
        return nil, "a Tagging without one TagSet"
      end
      set = type(set) == "table" and set.tag or nil
      if set ~= nil and type(set) ~= "table" then return nil, "a TagSet that is not a list of Tag" end
      for _, t in ipairs(set or {}) do
        local v = type(t) == "table" and t.value
        if v == nil then v = "" end
        if type(t) ~= "table" or type(t.key) ~= "string" or type(v) ~= "string" then
          return nil, "a Tag without one text Key and Value"
        end
        if tags[t.key] ~= nil then return nil, "the tag key '" .. t.key .. "' twice" end
        tags[t.key] = v
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
