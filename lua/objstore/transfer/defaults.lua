--- The defaults of every transfer, in one place: the library's transfers
-- (upload_file, download_file, upload_stream, copy_large), sync, the CLI
-- and openresty.put_request_body take theirs from here, so a default is
-- changed once. Pure data, no requires: any layer may read it.
--
-- The one threshold rule: a size from `multipart_threshold` on goes in
-- parts, a smaller one in a single request (the threshold defaults to the
-- part size unless a caller names another default below).
local MiB = 1024 * 1024

return {
  --- Part size of upload_file, download_file's ranges and upload_stream's
  -- first parts (then grown to fit the provider's part limits).
  PART_SIZE = 8 * MiB,
  --- copy_large's part size: a copied part costs no local bandwidth, and
  -- fewer, larger UploadPartCopy requests finish sooner.
  COPY_PART_SIZE = 64 * MiB,
  --- sync's multipart_threshold: a file of this size or more is sent or
  -- fetched in parts; smaller ones are one request, many at once.
  SYNC_THRESHOLD = 64 * MiB,
  --- openresty.put_request_body's multipart_threshold: request bodies
  -- from this size on stream into upload_stream.
  REQUEST_BODY_THRESHOLD = 16 * MiB,
  --- Parts (or ranges) in flight at once, by transfer. A stream holds
  -- every part in flight in memory (concurrency x part size), so fewer.
  CONCURRENCY = { upload_file = 8, download_file = 8, copy_large = 8, upload_stream = 4 },
  --- sync's and the CLI's files (or deletes) at once; a file in parts
  -- runs at most CONCURRENCY.upload_file/download_file of them.
  SYNC_CONCURRENCY = 16,
  --- The largest PutObject / CopyObject S3 and OSS take: a larger size goes
  -- in parts whatever the multipart_threshold (up to 5 TiB) says, rather
  -- than be refused by the store after its HEAD.
  MAX_SINGLE_REQUEST = 5 * 1024 * MiB,
}
