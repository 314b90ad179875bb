--- What differs between the S3 and OSS wire protocols above signing:
-- header prefixes and names. Everything else in the client is shared.
local _M = {}

_M.s3 = {
  name = "s3",
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
  crc64 = nil,
  sse_kms_key_id = "x-amz-server-side-encryption-aws-kms-key-id",
  -- CopySource is "/bucket/key" (key encoded) in both; S3 also takes ?versionId.
  -- bucket_exists asks with HeadBucket (HEAD /bucket).
  bucket_probe = nil,
}

_M.oss = {
  name = "oss",
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
  crc64 = "x-oss-hash-crc64ecma",
  sse_kms_key_id = "x-oss-server-side-encryption-key-id",
  -- bucket_exists asks with what OSS documents and Alibaba's SDKs use,
  -- GetBucketInfo (GET /?bucketInfo); HEAD on a bucket is not in OSS's API.
  bucket_probe = { op = "GetBucketInfo", method = "GET", query = { bucketInfo = true } },
}

return _M
