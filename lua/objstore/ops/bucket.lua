--- Bucket operations: create, delete, list, head/exists, ACL, policy,
-- location, versioning, CORS; each a builder of one request record.
local common = require "objstore.ops.common"
local request = require "objstore.engine.request"
local response = require "objstore.engine.response"
local errors = require "objstore.errors"
local xml = require "objstore.xml"
local checksum = require "objstore.checksum"
local cjson = require "cjson"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring

local ops = {}

--- A bucket request: `fields` over { op, method, bucket }; a body gets
-- its Content-MD5; `parse(t, res)` reads the XML body when `xml_body`,
-- and every result carries the request id.
local function bucket_request(c, fields, parse, xml_body)
  local t = { bucket = fields.bucket, headers = {} }
  for k, v in pairs(fields) do t[k] = v end
  if t.body then
    t.headers["Content-MD5"] = checksum.md5_base64(t.body)
    t.body_length = #t.body
  end
  t.parse = function(res, req)
    local body
    if xml_body then
      local perr
      body, perr = response.xml(res, req)
      if not body then return nil, perr end
    end
    local out = parse and parse(body or res, res) or {}
    out.request_id = response.request_id(c.dialect, res)
    return out
  end
  return request.new(t)
end

--- create_bucket(bucket, opts) -> { location, request_id } | nil, err
-- Creates a bucket. On S3 a region other than us-east-1 is sent as the
-- LocationConstraint (with an amazonaws.com endpoint the client's region
-- when opts.region is not given).
-- opts.region: the bucket's region (S3; default: none, or the client's
--   region on amazonaws.com).
-- opts.acl: a canned ACL for the bucket ("private", "public-read", ...).
-- opts.storage_class: the bucket's default storage class (OSS only).
-- errors: BucketAlreadyExists, BucketAlreadyOwnedByYou, InvalidBucketName.
ops.create_bucket = { build = function(c, bucket, opts)
  common.bucket(c, "create_bucket", 1, bucket)
  opts = common.opts("create_bucket", 2, opts, { region = true, acl = true, storage_class = true })
  -- The dialect's configuration: S3's LocationConstraint, OSS's StorageClass.
  local config = c.dialect.bucket_config(opts, c.endpoint.host, c.region)
  local fields = { op = "CreateBucket", method = "PUT", bucket = bucket, headers = {} }
  if opts.acl then fields.headers[c.dialect.bucket_acl] = opts.acl end
  if config then
    fields.body = xml.build("CreateBucketConfiguration", config, common.namespace(c))
    fields.headers["Content-Type"] = "application/xml"
  end
  return bucket_request(c, fields, function(res) return { location = res.headers["location"] } end)
end }

--- delete_bucket(bucket) -> { request_id } | nil, err
-- Deletes an empty bucket.
-- errors: NoSuchBucket, BucketNotEmpty.
ops.delete_bucket = { build = function(c, bucket)
  common.bucket(c, "delete_bucket", 1, bucket)
  return bucket_request(c, { op = "DeleteBucket", method = "DELETE", bucket = bucket })
end }

--- list_buckets() -> { buckets, owner, request_id } | nil, err
-- The buckets the credentials own.
-- result.buckets: { { name =, creation_date = }, ... }.
-- result.owner: { id =, display_name = } as the server sent it.
ops.list_buckets = { build = function(c)
  return bucket_request(c, { op = "ListBuckets", method = "GET" }, function(t)
    return { buckets = t.buckets and t.buckets.bucket or {}, owner = t.owner }
  end, true)
end }

--- head_bucket(bucket) -> { region, request_id } | nil, err
-- HeadBucket: whether the bucket exists and may be accessed.
-- result.region: the x-amz-bucket-region the server sent, if any.
-- errors: a 404 (NoSuchBucket) or 403 error with its status; HEAD answers
--   have no body, so `code` may be the status text only.
ops.head_bucket = { build = function(c, bucket)
  common.bucket(c, "head_bucket", 1, bucket)
  return bucket_request(c, { op = "HeadBucket", method = "HEAD", bucket = bucket }, function(res)
    return { region = res.headers["x-amz-bucket-region"] }
  end)
end }

--- bucket_exists(bucket) -> true | false | nil, err
-- true when the bucket exists, also when it belongs to someone else (403:
-- the name is taken); false for a 404. The request is the dialect's
-- `bucket_probe` (OSS: GetBucketInfo, as its API documents), else
-- HeadBucket.
ops.bucket_exists = {
  build = function(c, bucket)
    local probe = c.dialect.bucket_probe
    if not probe then return ops.head_bucket.build(c, bucket) end
    common.bucket(c, "bucket_exists", 1, bucket)
    local query = {}
    for k, v in pairs(probe.query) do query[k] = v end
    return bucket_request(c, { op = probe.op, method = probe.method, bucket = bucket, query = query })
  end,
  call = function(c, bucket)
    local res, err = c:send(ops.bucket_exists.build(c, bucket))
    if res then return true end
    if err.status == 404 then return false end
    if err.status == 403 then return true end
    return nil, err
  end,
}

--- get_bucket_acl(bucket) -> { owner, grants, request_id } | nil, err
-- result.owner: the bucket owner.
-- result.grants: the AccessControlList's grants, as parsed from the XML.
ops.get_bucket_acl = { build = function(c, bucket)
  common.bucket(c, "get_bucket_acl", 1, bucket)
  return bucket_request(c, { op = "GetBucketAcl", method = "GET", bucket = bucket, query = { acl = true } },
    function(t)
      return { owner = t.owner, grants = t.access_control_list and t.access_control_list.grant or {} }
    end, true)
end }

--- put_bucket_acl(bucket, canned) -> { request_id } | nil, err
-- Sets a canned ACL ("private", "public-read", "public-read-write", ...).
ops.put_bucket_acl = { build = function(c, bucket, canned)
  common.bucket(c, "put_bucket_acl", 1, bucket)
  if type(canned) ~= "string" then
    common.misuse("put_bucket_acl", 2, "canned", "must be a canned ACL string, " .. errors.got(canned))
  end
  return bucket_request(c, { op = "PutBucketAcl", method = "PUT", bucket = bucket, query = { acl = true },
    headers = { [c.dialect.bucket_acl] = canned } })
end }

--- get_bucket_policy(bucket) -> { policy, request_id } | nil, err
-- result.policy: the policy document, JSON text as the server stores it.
-- errors: NoSuchBucketPolicy.
ops.get_bucket_policy = { build = function(c, bucket)
  common.bucket(c, "get_bucket_policy", 1, bucket)
  return bucket_request(c, { op = "GetBucketPolicy", method = "GET", bucket = bucket, query = { policy = true } },
    function(res) return { policy = res.body } end)
end }

--- put_bucket_policy(bucket, policy) -> { request_id } | nil, err
-- Sets the bucket policy: `policy` is JSON text or a table (encoded as
-- JSON).
-- errors: MalformedPolicy.
ops.put_bucket_policy = { build = function(c, bucket, policy)
  common.bucket(c, "put_bucket_policy", 1, bucket)
  if type(policy) == "table" then policy = cjson.encode(policy) end
  if type(policy) ~= "string" then
    common.misuse("put_bucket_policy", 2, "policy", "must be JSON text or a table, " .. errors.got(policy))
  end
  return bucket_request(c, { op = "PutBucketPolicy", method = "PUT", bucket = bucket, query = { policy = true },
    headers = { ["Content-Type"] = "application/json" }, body = policy })
end }

--- delete_bucket_policy(bucket) -> { request_id } | nil, err
-- Removes the bucket policy.
ops.delete_bucket_policy = { build = function(c, bucket)
  common.bucket(c, "delete_bucket_policy", 1, bucket)
  return bucket_request(c, { op = "DeleteBucketPolicy", method = "DELETE", bucket = bucket,
    query = { policy = true } })
end }

--- get_bucket_location(bucket) -> { location, request_id } | nil, err
-- result.location: the region ("eu-west-1"), "" for us-east-1.
ops.get_bucket_location = { build = function(c, bucket)
  common.bucket(c, "get_bucket_location", 1, bucket)
  return bucket_request(c, { op = "GetBucketLocation", method = "GET", bucket = bucket,
    query = { location = true } }, function(t) return { location = t.text or "" } end, true)
end }

--- get_bucket_versioning(bucket) -> { status, mfa_delete, request_id } | nil, err
-- result.status: "Enabled", "Suspended" or nil (never enabled).
ops.get_bucket_versioning = { build = function(c, bucket)
  common.bucket(c, "get_bucket_versioning", 1, bucket)
  return bucket_request(c, { op = "GetBucketVersioning", method = "GET", bucket = bucket,
    query = { versioning = true } }, function(t) return { status = t.status, mfa_delete = t.mfa_delete } end, true)
end }

--- put_bucket_versioning(bucket, status) -> { request_id } | nil, err
-- Turns versioning on ("Enabled") or off ("Suspended").
ops.put_bucket_versioning = { build = function(c, bucket, status)
  common.bucket(c, "put_bucket_versioning", 1, bucket)
  if status ~= "Enabled" and status ~= "Suspended" then
    common.misuse("put_bucket_versioning", 2, "status", "must be 'Enabled' or 'Suspended'")
  end
  return bucket_request(c, { op = "PutBucketVersioning", method = "PUT", bucket = bucket,
    query = { versioning = true }, headers = { ["Content-Type"] = "application/xml" },
    body = xml.build("VersioningConfiguration", { { "Status", status } }, common.namespace(c)) })
end }

-- CORS rules: { allowed_origins = {...}, allowed_methods = {...}, allowed_headers = {...},
-- expose_headers = {...}, max_age_seconds = n, id = "..." (S3 only) }, and
-- the XML element each list is written as, in the documented order.
local CORS_LISTS = { { "allowed_origins", "AllowedOrigin" }, { "allowed_methods", "AllowedMethod" },
  { "allowed_headers", "AllowedHeader" }, { "expose_headers", "ExposeHeader" } }
local CORS_METHODS = { GET = true, PUT = true, POST = true, DELETE = true, HEAD = true }
local CORS_FIELDS = { id = true, allowed_origins = true, allowed_methods = true, allowed_headers = true,
  expose_headers = true, max_age_seconds = true }

local function cors_rule(c, i, r)
  local where = "rules[" .. i .. "]"
  if type(r) ~= "table" then common.misuse("put_bucket_cors", 2, where, "must be a table, " .. errors.got(r)) end
  for k in pairs(r) do
    if not CORS_FIELDS[k] then
      common.misuse("put_bucket_cors", 2, where .. "." .. tostring(k), "is not a field of a CORS rule")
    end
  end
  local out = {}
  if r.id ~= nil then
    if not c.dialect.cors_rule_id then
      common.misuse("put_bucket_cors", 2, where .. ".id", c.dialect.title .. " CORS rules have no id")
    end
    out[#out + 1] = { "ID", tostring(r.id) }
  end
  for _, l in ipairs(CORS_LISTS) do
    local list = r[l[1]]
    local required = l[1] == "allowed_origins" or l[1] == "allowed_methods"
    if list ~= nil and (type(list) ~= "table" or (required and #list == 0)) or (required and list == nil) then
      common.misuse("put_bucket_cors", 2, where .. "." .. l[1], required and "must be a non-empty list of strings"
        or "must be a list of strings")
    end
    for j, v in ipairs(list or {}) do
      if type(v) ~= "string" then
        common.misuse("put_bucket_cors", 2, where .. "." .. l[1] .. "[" .. j .. "]",
          "must be a string, " .. errors.got(v))
      end
      if l[1] == "allowed_methods" and not CORS_METHODS[v] then
        common.misuse("put_bucket_cors", 2, where .. ".allowed_methods[" .. j .. "]",
          "must be GET, PUT, POST, DELETE or HEAD, got " .. v)
      end
      out[#out + 1] = { l[2], v }
    end
  end
  if r.max_age_seconds ~= nil then
    local m = r.max_age_seconds
    if type(m) ~= "number" or m < 0 or m % 1 ~= 0 then
      common.misuse("put_bucket_cors", 2, where .. ".max_age_seconds", "must be a whole number >= 0")
    end
    out[#out + 1] = { "MaxAgeSeconds", m }
  end
  return { "CORSRule", out }
end

--- put_bucket_cors(bucket, rules, opts) -> { request_id } | nil, err
-- Sets the CORS rules (browser uploads need one, see docs/transfers.md).
-- A rule: { allowed_origins = {...}, allowed_methods = {"GET", "PUT",
-- "POST", "DELETE", "HEAD"}, allowed_headers = {...}, expose_headers =
-- {...}, max_age_seconds = n, id = "..." (S3 only) }.
-- opts.response_vary: true to answer with Vary: Origin (OSS only).
ops.put_bucket_cors = { build = function(c, bucket, rules, opts)
  common.bucket(c, "put_bucket_cors", 1, bucket)
  if type(rules) ~= "table" or #rules == 0 then
    common.misuse("put_bucket_cors", 2, "rules", "must be a non-empty list of CORS rules")
  end
  opts = common.opts("put_bucket_cors", 3, opts, { response_vary = true })
  local tree = {}
  for i, r in ipairs(rules) do tree[i] = cors_rule(c, i, r) end
  if opts.response_vary ~= nil then
    if not c.dialect.cors_response_vary then
      common.misuse("put_bucket_cors", 3, "opts.response_vary", "is an OSS option")
    end
    tree[#tree + 1] = { "ResponseVary", opts.response_vary and true or false }
  end
  return bucket_request(c, { op = "PutBucketCors", method = "PUT", bucket = bucket, query = { cors = true },
    headers = { ["Content-Type"] = "application/xml" },
    body = xml.build("CORSConfiguration", tree, common.namespace(c)) })
end }

--- get_bucket_cors(bucket) -> { rules, response_vary, request_id } | nil, err
-- result.rules: the rules, in the shape put_bucket_cors takes.
-- result.response_vary: OSS's ResponseVary (true/false), nil elsewhere.
-- errors: NoSuchCORSConfiguration.
ops.get_bucket_cors = { build = function(c, bucket)
  common.bucket(c, "get_bucket_cors", 1, bucket)
  return bucket_request(c, { op = "GetBucketCors", method = "GET", bucket = bucket, query = { cors = true } },
    function(t)
      local rules = {}
      for i, r in ipairs(t.cors_rule or {}) do
        rules[i] = { id = r.id, allowed_origins = r.allowed_origin, allowed_methods = r.allowed_method,
          allowed_headers = r.allowed_header, expose_headers = r.expose_header,
          max_age_seconds = r.max_age_seconds }
      end
      local vary = t.response_vary
      return { rules = rules, response_vary = vary ~= nil and vary == "true" or nil }
    end, true)
end }

--- delete_bucket_cors(bucket) -> { request_id } | nil, err
-- Removes the CORS rules.
ops.delete_bucket_cors = { build = function(c, bucket)
  common.bucket(c, "delete_bucket_cors", 1, bucket)
  return bucket_request(c, { op = "DeleteBucketCors", method = "DELETE", bucket = bucket, query = { cors = true } })
end }

return ops
