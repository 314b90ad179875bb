--- Bucket operations: create, delete, list, head/exists, ACL, policy,
-- location, versioning.
local common = require "objstore.client.common"
local xml = require "objstore.xml"
local checksum = require "objstore.checksum"
local cjson = require "cjson"

local type, pairs = type, pairs

return function(Client)
  local function bucket_call(self, name, method, bucket, query, extra)
    local op = { name = name, method = method, bucket = bucket, query = query }
    for k, v in pairs(extra or {}) do op[k] = v end
    return self:_call(op)
  end

  local function with_md5(op, body)
    op.body = body
    op.headers = op.headers or {}
    op.headers["Content-MD5"] = checksum.md5_base64(body)
    return op
  end

  --- create_bucket(bucket, {region=, acl=}) -> { location, request_id } | nil, err
  function Client:create_bucket(bucket, opts)
    common.check_bucket("create_bucket", bucket)
    opts = common.check_opts("create_bucket", opts, { region = true, acl = true, storage_class = true })
    local op = { name = "CreateBucket", method = "PUT", bucket = bucket, headers = {} }
    if opts.acl then op.headers[self.dialect.bucket_acl] = opts.acl end
    local config
    if self.provider == "oss" then
      if opts.storage_class then config = { { "StorageClass", opts.storage_class } } end
    else
      -- us-east-1 is the one region that takes no LocationConstraint.
      local region = opts.region
      if region == nil and self.endpoint.host:match("amazonaws%.com") then region = self.region end
      if region and region ~= "us-east-1" then config = { { "LocationConstraint", region } } end
    end
    if config then
      local ns = self.provider == "s3" and "http://s3.amazonaws.com/doc/2006-03-01/" or nil
      with_md5(op, xml.build("CreateBucketConfiguration", config, ns))
      op.headers["Content-Type"] = "application/xml"
    end
    op.parse = function(res) return { location = res.headers["location"], request_id = self:_request_id(res) } end
    return self:_call(op)
  end

  function Client:delete_bucket(bucket)
    common.check_bucket("delete_bucket", bucket)
    return bucket_call(self, "DeleteBucket", "DELETE", bucket, nil, {
      parse = function(res) return { request_id = self:_request_id(res) } end })
  end

  --- list_buckets() -> { buckets = {{name=, creation_date=}, ...}, owner = {...} }
  function Client:list_buckets()
    return self:_call{ name = "ListBuckets", method = "GET", parse = function(res, op)
      local t, err = self:_parse_xml(res, op)
      if not t then return nil, err end
      local buckets = t.buckets and t.buckets.bucket or {}
      return { buckets = buckets, owner = t.owner, request_id = self:_request_id(res) }
    end }
  end

  function Client:head_bucket(bucket)
    common.check_bucket("head_bucket", bucket)
    return bucket_call(self, "HeadBucket", "HEAD", bucket, nil, { parse = function(res)
      return { region = res.headers["x-amz-bucket-region"], request_id = self:_request_id(res) }
    end })
  end

  --- bucket_exists(bucket) -> true | false | nil, err (403 counts as existing:
  -- the name is taken, by someone).
  function Client:bucket_exists(bucket)
    common.check_bucket("bucket_exists", bucket)
    local res, err = self:head_bucket(bucket)
    if res then return true end
    if err.status == 404 then return false end
    if err.status == 403 then return true end
    return nil, err
  end

  function Client:get_bucket_acl(bucket)
    common.check_bucket("get_bucket_acl", bucket)
    return bucket_call(self, "GetBucketAcl", "GET", bucket, { acl = true }, { parse = function(res, op)
      local t, err = self:_parse_xml(res, op)
      if not t then return nil, err end
      local grants = t.access_control_list and t.access_control_list.grant or {}
      return { owner = t.owner, grants = grants, request_id = self:_request_id(res) }
    end })
  end

  --- put_bucket_acl(bucket, canned) with a canned ACL ("private", "public-read", ...).
  function Client:put_bucket_acl(bucket, canned)
    common.check_bucket("put_bucket_acl", bucket)
    if type(canned) ~= "string" then
      require("objstore.errors").argument("put_bucket_acl", "canned ACL must be a string", 2)
    end
    return bucket_call(self, "PutBucketAcl", "PUT", bucket, { acl = true }, {
      headers = { [self.dialect.bucket_acl] = canned },
      parse = function(res) return { request_id = self:_request_id(res) } end })
  end

  --- get_bucket_policy(bucket) -> { policy = <JSON text> }
  function Client:get_bucket_policy(bucket)
    common.check_bucket("get_bucket_policy", bucket)
    return bucket_call(self, "GetBucketPolicy", "GET", bucket, { policy = true }, {
      parse = function(res) return { policy = res.body, request_id = self:_request_id(res) } end })
  end

  --- put_bucket_policy(bucket, policy) where policy is JSON text or a table.
  function Client:put_bucket_policy(bucket, policy)
    common.check_bucket("put_bucket_policy", bucket)
    if type(policy) == "table" then policy = cjson.encode(policy) end
    if type(policy) ~= "string" then
      require("objstore.errors").argument("put_bucket_policy", "policy must be JSON text or a table", 2)
    end
    local op = with_md5({ name = "PutBucketPolicy", method = "PUT", bucket = bucket, query = { policy = true },
      headers = { ["Content-Type"] = "application/json" } }, policy)
    op.parse = function(res) return { request_id = self:_request_id(res) } end
    return self:_call(op)
  end

  function Client:delete_bucket_policy(bucket)
    common.check_bucket("delete_bucket_policy", bucket)
    return bucket_call(self, "DeleteBucketPolicy", "DELETE", bucket, { policy = true }, {
      parse = function(res) return { request_id = self:_request_id(res) } end })
  end

  --- get_bucket_location(bucket) -> { location = "eu-west-1" | "" }
  function Client:get_bucket_location(bucket)
    common.check_bucket("get_bucket_location", bucket)
    return bucket_call(self, "GetBucketLocation", "GET", bucket, { location = true }, { parse = function(res, op)
      local t, err = self:_parse_xml(res, op)
      if not t then return nil, err end
      return { location = t.text or "", request_id = self:_request_id(res) }
    end })
  end

  --- get_bucket_versioning(bucket) -> { status = "Enabled" | "Suspended" | nil, mfa_delete }
  function Client:get_bucket_versioning(bucket)
    common.check_bucket("get_bucket_versioning", bucket)
    return bucket_call(self, "GetBucketVersioning", "GET", bucket, { versioning = true }, { parse = function(res, op)
      local t, err = self:_parse_xml(res, op)
      if not t then return nil, err end
      return { status = t.status, mfa_delete = t.mfa_delete, request_id = self:_request_id(res) }
    end })
  end

  function Client:put_bucket_versioning(bucket, status)
    common.check_bucket("put_bucket_versioning", bucket)
    if status ~= "Enabled" and status ~= "Suspended" then
      require("objstore.errors").argument("put_bucket_versioning", "status must be 'Enabled' or 'Suspended'", 2)
    end
    local ns = self.provider == "s3" and "http://s3.amazonaws.com/doc/2006-03-01/" or nil
    local op = with_md5({ name = "PutBucketVersioning", method = "PUT", bucket = bucket,
      query = { versioning = true }, headers = { ["Content-Type"] = "application/xml" } },
      xml.build("VersioningConfiguration", { { "Status", status } }, ns))
    op.parse = function(res) return { request_id = self:_request_id(res) } end
    return self:_call(op)
  end

end
