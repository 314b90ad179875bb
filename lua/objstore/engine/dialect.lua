--- What differs between providers (S3 and S3-compatible stores, Alibaba
-- OSS), as data: one table per provider, made by `define`. The rest of
-- the client is shared and asks `c.dialect.<fact>` (or
-- `dialect.get(provider)` where it holds a provider name): adding a
-- provider is adding a table here (and, where it brings its own signature
-- or STS protocol, that protocol's code under the name given here).
local _M = {}

local MiB = 1024 * 1024
local GiB = 1024 * MiB

--- The provider names, in the order they are defined ("s3", "oss").
_M.names = {}

--- The facts every provider's table has, and their types (the others
-- may be nil: host_id, ec, crc64, bucket_probe, xmlns, default_region
-- with region_misuse, virtual_hosts, the SSE headers a provider lacks,
-- signature_env).
_M.REQUIRED = {
  name = "string", title = "string", prefix = "string", meta = "string", object_acl = "string",
  bucket_acl = "string", storage_class = "string", copy_source = "string", copy_source_range = "string",
  metadata_directive = "string", request_id = "string", version_id = "string", delete_marker = "string",
  sse_kms_key_id = "string", signatures = "table", default_signature = "string", signature_misuse = "string",
  region_env = "table", endpoint_env = "table", shared_config = "boolean", endpoint_url = "function",
  path_style = "boolean", limits = "table", flexible_checksums = "boolean", crc_kinds = "table",
  sse_modes = "table", sse_kms = "string", kms_etag_is_md5 = "boolean", bucket_config = "function",
  cors_rule_id = "boolean", cors_response_vary = "boolean", post_acl_field = "string", post_tagging = "boolean",
  post_callbacks = "boolean", post_expiration_suffix = "string", post_forms = "table", sts = "string",
  sts_region = "string", sts_endpoint = "function", credentials = "string", env_credentials = "table",
}

--- define(t) -> t
-- Adds provider t.name (a new name; raises when a fact of REQUIRED is
-- missing or of another type, or when neither default_region nor
-- region_misuse is set).
function _M.define(t)
  for fact, ty in pairs(_M.REQUIRED) do
    if type(t[fact]) ~= ty then
      error("objstore.engine.dialect.define: " .. tostring(t.name) .. "." .. fact .. " must be a " .. ty, 2)
    end
  end
  if _M[t.name] ~= nil then error("objstore.engine.dialect.define: '" .. t.name .. "' is taken", 2) end
  if t.default_region == nil and type(t.region_misuse) ~= "string" then
    error("objstore.engine.dialect.define: " .. t.name .. " needs default_region or region_misuse", 2)
  end
  _M[t.name] = t
  _M.names[#_M.names + 1] = t.name
  return t
end
local define = _M.define

--- The dialect of a provider name, or nil for a name that is none.
function _M.get(name)
  local d = type(name) == "string" and rawget(_M, name)
  if type(d) == "table" and d.name == name then return d end
  return nil
end

--- The provider names as an option's misuse message lists them:
-- "'s3' or 'oss'".
function _M.choices()
  local q = {}
  for i, n in ipairs(_M.names) do q[i] = "'" .. n .. "'" end
  if #q < 2 then return q[1] or "" end
  return table.concat(q, ", ", 1, #q - 1) .. " or " .. q[#q]
end

define{
  name = "s3",
  title = "S3",
  -- Header names.
  prefix = "x-amz-",
  meta = "x-amz-meta-",
  object_acl = "x-amz-acl",
  bucket_acl = "x-amz-acl",
  storage_class = "x-amz-storage-class",
  copy_source = "x-amz-copy-source",
  copy_source_range = "x-amz-copy-source-range",
  metadata_directive = "x-amz-metadata-directive",
  request_id = "x-amz-request-id",
  host_id = "x-amz-id-2",
  version_id = "x-amz-version-id",
  delete_marker = "x-amz-delete-marker",
  sse_kms_key_id = "x-amz-server-side-encryption-aws-kms-key-id",
  -- The namespace of XML request bodies.
  xmlns = "http://s3.amazonaws.com/doc/2006-03-01/",
  -- CopySource is "/bucket/key" (key encoded) in both; S3 also takes ?versionId.
  -- bucket_exists asks with HeadBucket (HEAD /bucket).
  bucket_probe = nil,

  -- Signatures: the client's `signature` option -> signer algorithm.
  signatures = { v4 = "aws4" },
  default_signature = "v4",
  signature_misuse = "S3 supports only signature 'v4'",

  -- Region and endpoint: the client's options, else these environment
  -- variables (first set wins), else the shared AWS config file
  -- (region, endpoint_url), else the default region.
  region_env = { "AWS_REGION", "AWS_DEFAULT_REGION" },
  endpoint_env = { "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL" },
  shared_config = true,
  default_region = "us-east-1",
  endpoint_url = function(region) return "https://s3." .. region .. ".amazonaws.com" end,
  -- Path-style requests are served; virtual-hosted ones by default on
  -- hosts matching these patterns only.
  path_style = true,
  virtual_hosts = { "%.amazonaws%.com$", "%.amazonaws%.com%.cn$" },

  -- Multipart limits.
  limits = { min_part = 5 * MiB, max_part = 5 * GiB, max_parts = 10000, max_object = 5 * 1024 * GiB },

  -- Checksums: flexible checksums (x-amz-checksum-*) are served; no
  -- whole-object CRC header of the server's own (crc64 = nil). The CRCs
  -- computed beside MD5s: CRC-64/NVME.
  flexible_checksums = true,
  crc64 = nil,
  crc_kinds = { "crc64nvme" },

  -- Server-side encryption: the `sse` modes, the KMS mode's name, SSE-C
  -- (customer keys, with these header prefixes), a KMS context header;
  -- SSE-KMS objects' ETags are not the MD5 of their bytes.
  sse_modes = { AES256 = "AES256", ["aws:kms"] = "aws:kms" },
  sse_kms = "aws:kms",
  sse_customer_prefix = "x-amz-",
  sse_customer_copy_prefix = "x-amz-copy-source-",
  sse_kms_context = "x-amz-server-side-encryption-context",
  sse_data_encryption = nil,
  kms_etag_is_md5 = false,

  -- CreateBucket's configuration body: a LocationConstraint for a region
  -- other than us-east-1 (on amazonaws.com the client's region by
  -- default); opts.storage_class is not an S3 bucket setting.
  bucket_config = function(opts, host, client_region)
    local region = opts.region
    if region == nil and host:match("amazonaws%.com") then region = client_region end
    -- us-east-1 is the one region that takes no LocationConstraint.
    if region and region ~= "us-east-1" then return { { "LocationConstraint", region } } end
    return nil
  end,
  -- CORS: rules carry an ID; no ResponseVary.
  cors_rule_id = true,
  cors_response_vary = false,

  -- Browser POST forms: the ACL field's name, tagging, upload callbacks,
  -- how the policy's expiration ends (boto3 writes no milliseconds).
  post_acl_field = "acl",
  post_tagging = true,
  post_callbacks = false,
  post_expiration_suffix = "Z",
  -- The form fields of each signature (by signer algorithm): the
  -- signature's field, the signing scope's fields as { form field,
  -- presigned URL parameter it is read from }, and whether each scope
  -- field is also a policy condition.
  post_forms = {
    aws4 = { signature = "x-amz-signature", scope_conditions = true,
      scope = { { "x-amz-algorithm", "X-Amz-Algorithm" }, { "x-amz-credential", "X-Amz-Credential" },
        { "x-amz-date", "X-Amz-Date" }, { "x-amz-security-token", "X-Amz-Security-Token" } } },
  },

  -- STS: the protocol (objstore.sts), its default region and endpoint.
  sts = "aws",
  sts_region = "us-east-1",
  sts_endpoint = function(region)
    region = region or "us-east-1"
    return "https://sts." .. region .. ".amazonaws.com" .. (region:find("^cn%-") and ".cn" or "")
  end,

  -- Credentials: the family of sources (objstore.credentials.chain) and
  -- the environment's key pairs, in order: { access key, secret key,
  -- session token names... }.
  credentials = "aws",
  env_credentials = { { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN" } },
  -- The command line's environment variable for --signature (none: S3
  -- has one signature).
  signature_env = nil,
}

define{
  name = "oss",
  title = "OSS",
  prefix = "x-oss-",
  meta = "x-oss-meta-",
  object_acl = "x-oss-object-acl",
  bucket_acl = "x-oss-acl",
  storage_class = "x-oss-storage-class",
  copy_source = "x-oss-copy-source",
  copy_source_range = "x-oss-copy-source-range",
  metadata_directive = "x-oss-metadata-directive",
  request_id = "x-oss-request-id",
  host_id = nil,
  -- OSS's fine-grained error code, also in an <Error>'s <EC>: the header is
  -- all a HEAD's error answer has.
  ec = "x-oss-ec",
  version_id = "x-oss-version-id",
  delete_marker = "x-oss-delete-marker",
  sse_kms_key_id = "x-oss-server-side-encryption-key-id",
  -- OSS takes request bodies without a namespace.
  xmlns = nil,
  -- bucket_exists asks with what OSS documents and Alibaba's SDKs use,
  -- GetBucketInfo (GET /?bucketInfo); HEAD on a bucket is not in OSS's API.
  bucket_probe = { op = "GetBucketInfo", method = "GET", query = { bucketInfo = true } },

  -- V4 by default, V1 on request.
  signatures = { v4 = "oss4", v1 = "oss1" },
  default_signature = "v4",
  signature_misuse = "must be 'v4' or 'v1' for OSS",

  region_env = { "OSS_REGION" },
  endpoint_env = { "OSS_ENDPOINT" },
  shared_config = false,
  -- A region is required (no default); "oss-cn-hangzhou" is taken for
  -- "cn-hangzhou".
  default_region = nil,
  region_misuse = "is required for OSS (e.g. 'cn-hangzhou')",
  region_prefix = "^oss%-",
  endpoint_url = function(region) return "https://oss-" .. region .. ".aliyuncs.com" end,
  -- Buckets are served as host names only: path-style is refused and a
  -- bucket name must be a DNS label.
  path_style = false,
  virtual_hosts = nil,

  limits = { min_part = 100 * 1024, max_part = 5 * GiB, max_parts = 10000, max_object = 48800 * GiB },

  -- No flexible checksums; OSS reports the object's CRC-64/ECMA in this
  -- header, so uploads compute it beside CRC-64/NVME to compare.
  flexible_checksums = false,
  crc64 = "x-oss-hash-crc64ecma",
  crc_kinds = { "crc64nvme", "crc64ecma" },

  sse_modes = { AES256 = "AES256", KMS = "KMS", SM4 = "SM4" },
  sse_kms = "KMS",
  sse_customer_prefix = nil,
  sse_customer_copy_prefix = nil,
  sse_kms_context = nil,
  -- KMS's data cipher (SM4).
  sse_data_encryption = "x-oss-server-side-data-encryption",
  kms_etag_is_md5 = true,

  -- CreateBucket's configuration: the default storage class only.
  bucket_config = function(opts)
    if opts.storage_class then return { { "StorageClass", opts.storage_class } } end
    return nil
  end,
  cors_rule_id = false,
  cors_response_vary = true,

  post_acl_field = "x-oss-object-acl",
  post_tagging = false,
  post_callbacks = true,
  -- OSS documents its expiration with milliseconds.
  post_expiration_suffix = ".000Z",
  post_forms = {
    oss4 = { signature = "x-oss-signature", scope_conditions = true,
      scope = { { "x-oss-signature-version", "x-oss-signature-version" }, { "x-oss-credential", "x-oss-credential" },
        { "x-oss-date", "x-oss-date" }, { "x-oss-security-token", "x-oss-security-token" } } },
    -- V1: the access key id and token as fields, not policy conditions.
    oss1 = { signature = "Signature", scope_conditions = false,
      scope = { { "OSSAccessKeyId", "OSSAccessKeyId" }, { "x-oss-security-token", "security-token" } } },
  },

  sts = "aliyun",
  sts_region = "cn-hangzhou",
  sts_endpoint = function(region)
    return region and ("https://sts." .. region .. ".aliyuncs.com") or "https://sts.aliyuncs.com"
  end,

  credentials = "alibaba",
  -- OSS_* first, then Alibaba Cloud's ALIBABA_CLOUD_* names.
  env_credentials = { { "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN" },
    { "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN" } },
  signature_env = "OSS_SIGNATURE_VERSION",
}

return _M
