-- OSS request shape, proved against Alibaba's official Node SDK (ali-oss,
-- pinned in package.json). There is no OSS server here, so both clients
-- build and sign the same operations at the same fixed instant without
-- sending them, and the results are compared:
--   * objstore: c:prepare(op, ...) / c:presign(...), clock fixed with c.now;
--   * ali-oss:  spec/support/ali_oss_shape.js, which intercepts ali-oss's
--     HTTP client (its `urllib` option) and fixes the global Date.
-- Compared for every case: the method; the URL (scheme, host, path with
-- percent-encoding normalised per segment, the query as a multiset of
-- decoded parameters); every header that matters, by lower-case name:
-- Authorization byte for byte (the signatures are equal), the date
-- headers, every x-oss-* header, Content-MD5, Content-Type, Range, If-*;
-- Content-Length against objstore's body_length; and the body.
--
-- Differences that are intentional or harmless are not skipped: each is
-- pinned to its exact value on both sides (a change on either side fails),
-- and where it touches a signed input the signature is still compared on a
-- second ali-oss run whose request is adjusted the same way before ali-oss
-- signs it (`align`, see ali_oss_shape.js). Rules that apply to all cases:
--   R1 V1 signing: objstore sends the time in `Date`, ali-oss in
--      `x-oss-date` (the same string). OSS reads either ("x-oss-date wins
--      when both are present"); objstore's Authorization is compared with
--      ali-oss's V1 signature of the same request with the time in Date,
--      computed by ali-oss's own buildCanonicalString. Cases that pass
--      x-oss-date explicitly to objstore compare ali-oss's raw header.
--   R2 XML request bodies (DeleteObjects, CompleteMultipartUpload,
--      PutBucketVersioning, CreateBucket with a storage class) differ in
--      formatting (XML declaration, newlines, entity choice); they must be
--      the same document (text content after decoding), and ali-oss, given
--      objstore's body, must compute objstore's Content-MD5 and signature.
--   R3 x-oss-copy-source (CopyObject, UploadPartCopy): objstore keeps '/'
--      in the source key, ali-oss encodes it as %2F (encodeURIComponent);
--      OSS decodes the header, so the decoded values must be equal; the
--      signature is compared with objstore's value given to ali-oss.
--   R4 ali-oss writes value-less sub-resources as "uploads=" in the URL
--      (and signs them as "uploads"); "k" and "k=" are the same parameter.
--   R5 user-agent (ali-oss only) is ignored; Host is implied by the URL.
--   R6 CopyObject: objstore always states x-oss-metadata-directive (COPY
--      by default), ali-oss only sends REPLACE; COPY is OSS's default.
-- Besides, objstore's URL must be fully encoded (no '#', space, raw
-- UTF-8...) and no header may appear twice under different letter cases.
-- Per-case differences are listed in `known` with the reason.
local cjson = require "cjson"
local servers = require "servers"
local objstore = require "objstore"

local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/oss_shape_spec.lua"
local ROOT = here:match("^(.*)/spec/[^/]*$") or "."

local AK, SK = "LTAI5tShapeTestKeyId", "shapeTestSecret/With+Chars="
local TOKEN = "CAIS-shape-test-sts-token/+="
local REGION, ENDPOINT = "cn-hangzhou", "https://oss-cn-hangzhou.aliyuncs.com"
local T0 = 1700000000 -- 2023-11-14T22:13:20Z
local T1 = 1735689599 -- 2024-12-31T23:59:59Z, the last second of a day and a year
local BUCKET, SRC_BUCKET = "objstore-shape", "objstore-shape-src"
local UPLOAD_ID = "0004B9895DBBB6EC98E36A2E6BD4E5E7"
local VERSION_ID = "CAEQNhiBgMDJgZCA0BYiIDc4MGZjZGI2OTBjOTRm+/="

-- Awkward keys; none has an extension either client maps to a type (see
-- the content-type cases for those).
local KEYS = { "plain-key", "with space/and more", "unicode-\195\169\228\184\173\230\150\135/\208\186\208\187",
  "plus+sign", "percent%41%", "q?mark", "hash#tag", "eq=and&amp", "double//slash", "trailing/",
  "tilde~star*(paren)!'", "semi;colon,comma$dollar@at" }

---------------------------------------------------------------------------
-- Cases
---------------------------------------------------------------------------
local CASES, BY_ID = {}, {}

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = deepcopy(x) end
  return t
end

-- Adds a case in each signing variant: V4 and V1, with and without STS.
local function add(base)
  local n = 0
  for _, sig in ipairs(base.sigs or { "v4", "v1" }) do
    for _, sts in ipairs{ false, true } do
      n = n + 1
      local c = deepcopy(base)
      c.sig, c.sts = sig, sts and TOKEN or nil
      c.id = base.name .. " [" .. sig .. (sts and ", sts" or "") .. "]"
      c.time = base.time or ((#CASES % 2 == 0) and T0 or T1)
      c.opts = c.opts or {}
      if c.op == "delete_objects" or c.op == "complete_multipart_upload" or c.op == "put_bucket_versioning"
        or c.op == "put_object_tagging"
        or (c.op == "create_bucket" and c.opts.storage_class) then
        c.xml_body = true -- R2
      end
      assert(not BY_ID[c.id], "duplicate case " .. c.id)
      CASES[#CASES + 1], BY_ID[c.id] = c, c
    end
  end
end

local function body_for(k) return "shape test body for " .. k .. "\n" end

for _, k in ipairs(KEYS) do
  local q = string.format("%q", k)
  add{ name = "put_object " .. q, op = "put_object", bucket = BUCKET, key = k, body = body_for(k),
    opts = { content_type = "text/plain; charset=utf-8" } }
  add{ name = "get_object " .. q, op = "get_object", bucket = BUCKET, key = k }
  add{ name = "head_object " .. q, op = "head_object", bucket = BUCKET, key = k }
  add{ name = "delete_object " .. q, op = "delete_object", bucket = BUCKET, key = k }
  add{ name = "copy_object from " .. q, op = "copy_object", bucket = BUCKET, key = "copied/" .. k,
    opts = { src_bucket = SRC_BUCKET, src_key = k } }
  add{ name = "create_multipart_upload " .. q, op = "create_multipart_upload", bucket = BUCKET, key = k,
    opts = { content_type = "application/octet-stream" } }
  add{ name = "upload_part " .. q, op = "upload_part", bucket = BUCKET, key = k, body = body_for(k),
    opts = { upload_id = UPLOAD_ID, part_number = 3, content_md5 = false } }
  add{ name = "upload_part_copy from " .. q, op = "upload_part_copy", bucket = BUCKET, key = "parts/" .. k,
    opts = { upload_id = UPLOAD_ID, part_number = 2, src_bucket = SRC_BUCKET, src_key = k } }
  add{ name = "complete_multipart_upload " .. q, op = "complete_multipart_upload", bucket = BUCKET, key = k,
    opts = { upload_id = UPLOAD_ID, parts = { { part_number = 1, etag = '"5D41402ABC4B2A76B9719D911017C592"' } } } }
  add{ name = "abort_multipart_upload " .. q, op = "abort_multipart_upload", bucket = BUCKET, key = k,
    opts = { upload_id = UPLOAD_ID } }
  add{ name = "list_parts " .. q, op = "list_parts", bucket = BUCKET, key = k, opts = { upload_id = UPLOAD_ID } }
  add{ name = "presign GET " .. q, op = "presign", bucket = BUCKET, key = k, opts = { method = "GET", expires = 900 } }
end

-- put_object options
add{ name = "put_object with metadata, acl, storage class, cache headers", op = "put_object", bucket = BUCKET,
  key = "plain-key", body = "{\"a\": 1}",
  opts = { content_type = "application/json", metadata = { owner = "alice", ["trace-id"] = "a b/c=d",
    padded = "  spaced value  " }, acl = "public-read", storage_class = "IA", cache_control = "no-cache",
    content_disposition = "attachment; filename=\"a b.json\"" } }
-- Server-side encryption: objstore's sse options against the x-oss- headers
-- ali-oss users pass; the signatures cover them.
add{ name = "put_object with SSE-KMS, key id and SM4 data encryption", op = "put_object", bucket = BUCKET,
  key = "enc/kms", body = "secret", opts = { content_type = "text/plain", sse = "KMS",
    sse_kms_key_id = "9468da86-3509-4f8d-a61e-6eab1eac4d12", sse_data_encryption = "SM4" } }
add{ name = "put_object with SSE AES256", op = "put_object", bucket = BUCKET, key = "enc/aes", body = "x",
  opts = { content_type = "text/plain", sse = "AES256" } }
add{ name = "create_multipart_upload with SSE SM4", op = "create_multipart_upload", bucket = BUCKET,
  key = "enc/sm4", opts = { content_type = "application/octet-stream", sse = "SM4" } }
-- A header given in another letter case replaces objstore's default
-- (HTTP names are case-insensitive): one Content-Type, the caller's.
add{ name = "put_object content type as a lower-case header", op = "put_object", bucket = BUCKET, key = "lower",
  body = "x", opts = { headers = { ["content-type"] = "text/plain" } } }
add{ name = "put_object empty body", op = "put_object", bucket = BUCKET, key = "empty", body = "",
  opts = { content_type = "application/octet-stream" } }
add{ name = "put_object with acl private, storage class Archive", op = "put_object", bucket = BUCKET,
  key = "archive/obj", body = "x", opts = { content_type = "application/octet-stream", acl = "private",
    storage_class = "Archive" } }
-- V1 with the time passed in x-oss-date, as ali-oss sends it: the raw
-- ali-oss Authorization must then match too (R1).
for _, t in ipairs{ T0, T1 } do
  local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", t)
  add{ name = "put_object V1 with x-oss-date at " .. t, sigs = { "v1" }, time = t, op = "put_object",
    bucket = BUCKET, key = "with space/and more", body = "hello", explicit_date = true,
    opts = { content_type = "text/plain", metadata = { m = "1" }, headers = { ["x-oss-date"] = date } } }
  add{ name = "get_object V1 with x-oss-date at " .. t, sigs = { "v1" }, time = t, op = "get_object",
    bucket = BUCKET, key = "q?mark", explicit_date = true,
    opts = { version_id = VERSION_ID, response_content_type = "text/plain", headers = { ["x-oss-date"] = date } } }
  add{ name = "head_object V1 with x-oss-date at " .. t, sigs = { "v1" }, time = t, op = "head_object",
    bucket = BUCKET, key = "plus+sign", explicit_date = true, opts = { headers = { ["x-oss-date"] = date } } }
end

-- get/head/delete options
add{ name = "get_object range, version, if-match", op = "get_object", bucket = BUCKET, key = "plain-key",
  opts = { range = { 0, 99 }, version_id = VERSION_ID, if_match = '"5d41402abc4b2a76b9719d911017c592"' } }
add{ name = "get_object open range, if-none-match", op = "get_object", bucket = BUCKET, key = "hash#tag",
  opts = { range = "bytes=100-", if_none_match = '"abc"' } }
add{ name = "get_object response overrides", op = "get_object", bucket = BUCKET, key = "unicode-\195\169",
  opts = { response_content_type = "text/plain; charset=utf-8",
    response_content_disposition = "attachment; filename=\"r \195\169 & co.txt\"",
    response_content_encoding = "identity", response_content_language = "zh-CN",
    response_cache_control = "no-cache, max-age=0", response_expires = "Thu, 01 Dec 1994 16:00:00 GMT" } }
add{ name = "get_object part number", op = "get_object", bucket = BUCKET, key = "plain-key",
  opts = { part_number = 2 } }
add{ name = "head_object version, if-none-match", op = "head_object", bucket = BUCKET, key = "eq=and&amp",
  opts = { version_id = VERSION_ID, if_none_match = '"abc"' } }
add{ name = "delete_object version", op = "delete_object", bucket = BUCKET, key = "trailing/",
  opts = { version_id = VERSION_ID } }

-- delete_objects (POST ?delete with Content-MD5; R2)
local many = {}
for i, k in ipairs(KEYS) do many[i] = k end
many[#many + 1] = { key = "versioned<key>\"'", version_id = VERSION_ID }
add{ name = "delete_objects awkward keys, quiet", op = "delete_objects", bucket = BUCKET, xml_body = true,
  opts = { keys = many, quiet = true } }
add{ name = "delete_objects two keys", op = "delete_objects", bucket = BUCKET, xml_body = true,
  opts = { keys = { "a", "b/c" } } }

-- copy_object (R3)
add{ name = "copy_object REPLACE with metadata", op = "copy_object", bucket = BUCKET, key = "dst key+",
  opts = { src_bucket = SRC_BUCKET, src_key = "src/dir/key with space", metadata = { color = "blue", n = "2" } } }
add{ name = "copy_object source version", op = "copy_object", bucket = BUCKET, key = "dst",
  opts = { src_bucket = SRC_BUCKET, src_key = "a/b%c", source_version_id = VERSION_ID } }
add{ name = "copy_object same bucket", op = "copy_object", bucket = BUCKET, key = "renamed",
  opts = { src_bucket = BUCKET, src_key = "plain-key" } }
-- ali-oss's copy() also sends every option header as
-- x-oss-copy-source-<name> (its way of passing source conditions), so a
-- Content-Type for the copy becomes an extra x-oss-copy-source-content-type.
add{ name = "copy_object REPLACE with content type", op = "copy_object", bucket = BUCKET, key = "typed",
  opts = { src_bucket = SRC_BUCKET, src_key = "untyped", content_type = "text/csv", metadata = { a = "1" } },
  known = { ["x-oss-copy-source-content-type"] = { objstore = false, ali = "text/csv",
    why = "ali-oss copy() mirrors option headers as x-oss-copy-source-<name>" } },
  align = { drop_headers = { "x-oss-copy-source-content-type" } } }

-- listings
add{ name = "list_objects (v2) defaults", op = "list_objects", bucket = BUCKET }
add{ name = "list_objects (v2) prefix, delimiter, max-keys, start-after", op = "list_objects", bucket = BUCKET,
  opts = { prefix = "dir/sub dir/", delimiter = "/", max_keys = 100, start_after = "dir/sub dir/a+b" } }
add{ name = "list_objects (v2) continuation token", op = "list_objects", bucket = BUCKET,
  opts = { prefix = "p", continuation_token = "CgpkaXIvYS50eHQ+/=", max_keys = 2 } }
add{ name = "list_objects (v2) awkward prefix, fetch-owner", op = "list_objects", bucket = BUCKET,
  opts = { prefix = "unicode-\195\169/ ?&=+#%", fetch_owner = true } }
add{ name = "list_objects_v1 defaults", op = "list_objects_v1", bucket = BUCKET }
add{ name = "list_objects_v1 prefix, delimiter, marker, max-keys", op = "list_objects_v1", bucket = BUCKET,
  opts = { prefix = "logs/2024 01/", delimiter = "/", marker = "logs/2024 01/a&b", max_keys = 1000 } }
add{ name = "list_multipart_uploads defaults", op = "list_multipart_uploads", bucket = BUCKET }
add{ name = "list_multipart_uploads all options", op = "list_multipart_uploads", bucket = BUCKET,
  opts = { prefix = "up/", delimiter = "/", key_marker = "up/k m", upload_id_marker = UPLOAD_ID, max_uploads = 50 } }
add{ name = "list_object_versions defaults", op = "list_object_versions", bucket = BUCKET }
add{ name = "list_object_versions all options", op = "list_object_versions", bucket = BUCKET,
  opts = { prefix = "v/", delimiter = "/", key_marker = "v/a b", version_id_marker = VERSION_ID, max_keys = 7 } }
add{ name = "list_parts max-parts, marker", op = "list_parts", bucket = BUCKET, key = "big/object",
  opts = { upload_id = UPLOAD_ID, max_parts = 10, part_number_marker = 5 } }

-- buckets
add{ name = "create_bucket", op = "create_bucket", bucket = BUCKET }
add{ name = "create_bucket with acl", op = "create_bucket", bucket = BUCKET, opts = { acl = "public-read" } }
add{ name = "create_bucket with storage class", op = "create_bucket", bucket = BUCKET, xml_body = true,
  opts = { storage_class = "IA", acl = "private" } }
add{ name = "delete_bucket", op = "delete_bucket", bucket = BUCKET }
add{ name = "get_bucket_acl", op = "get_bucket_acl", bucket = BUCKET }
add{ name = "put_bucket_acl", op = "put_bucket_acl", bucket = BUCKET, opts = { acl = "public-read-write" } }
add{ name = "list_buckets", op = "list_buckets" }
add{ name = "get_bucket_location", op = "get_bucket_location", bucket = BUCKET }
-- OSS has no HeadBucket: bucket_exists asks GetBucketInfo, as ali-oss does
add{ name = "bucket_exists (GetBucketInfo)", op = "bucket_exists", bucket = BUCKET }
add{ name = "put_object_tagging", op = "put_object_tagging", bucket = BUCKET, key = "dir/tagged",
  opts = { tags = { project = "alpha", ["cost center"] = "r+d=1:a/b_c.d" } } }
add{ name = "put_object_tagging of a version", op = "put_object_tagging", bucket = BUCKET, key = "tagged",
  opts = { tags = { a = "1" }, version_id = "CAEQNhiBgMDJgZCA0BYiIDc4MGZjZGI2OTBjOTRmNTE5NmU5NmFmZjZmNjNlNGM2" } }
add{ name = "get_object_tagging", op = "get_object_tagging", bucket = BUCKET, key = "dir/tagged" }
add{ name = "get_object_tagging of a version", op = "get_object_tagging", bucket = BUCKET, key = "tagged",
  opts = { version_id = "v-123" } }
add{ name = "delete_object_tagging", op = "delete_object_tagging", bucket = BUCKET, key = "dir/tagged" }
add{ name = "get_bucket_versioning", op = "get_bucket_versioning", bucket = BUCKET }
add{ name = "put_bucket_versioning", op = "put_bucket_versioning", bucket = BUCKET, opts = { status = "Enabled" } }
add{ name = "get_bucket_policy", op = "get_bucket_policy", bucket = BUCKET }
add{ name = "delete_bucket_policy", op = "delete_bucket_policy", bucket = BUCKET }
add{ name = "put_bucket_policy", op = "put_bucket_policy", bucket = BUCKET,
  opts = { policy = '{"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:GetObject"],'
    .. '"Principal":["*"],"Resource":["acs:oss:*:*:objstore-shape/*"]}]}' },
  known = { ["content-type"] = { objstore = "application/json", ali = false,
    why = "objstore labels the policy document, ali-oss sends it untyped" } },
  align = { set_headers = { ["Content-Type"] = "application/json" } } }

-- multipart options
add{ name = "create_multipart_upload with metadata, acl, storage class", op = "create_multipart_upload",
  bucket = BUCKET, key = "big/object", opts = { content_type = "application/zip", metadata = { part = "yes" },
    acl = "public-read", storage_class = "IA", cache_control = "max-age=60" } }
add{ name = "complete_multipart_upload parts out of order", op = "complete_multipart_upload", bucket = BUCKET,
  key = "big/object", xml_body = true, opts = { upload_id = UPLOAD_ID, parts = {
    { part_number = 3, etag = '"C"' }, { part_number = 1, etag = '"A"' }, { part_number = 2, etag = '"B&B"' } } } }
-- ali-oss's Node build streams parts, so it sends no Content-MD5 (its
-- browser build buffers them and does); objstore sends one by default.
add{ name = "upload_part_copy range, source version", op = "upload_part_copy", bucket = BUCKET,
  key = "big/object", opts = { upload_id = UPLOAD_ID, part_number = 7, src_bucket = SRC_BUCKET,
    src_key = "src dir/a+b", range = { 0, 1048575 }, source_version_id = VERSION_ID } }
add{ name = "upload_part with Content-MD5", op = "upload_part", bucket = BUCKET, key = "big/object",
  body = "part body", opts = { upload_id = UPLOAD_ID, part_number = 10000 },
  known = { ["content-md5"] = { objstore = "fWhAvsSmLOBimA6ZJsJLWQ==", ali = false,
    why = "ali-oss (Node) streams parts and sends no Content-MD5" } },
  align_body = true }

-- Content-Type guesses: where the clients differ, the difference is pinned.
add{ name = "put_object type guessed from .jpg", op = "put_object", bucket = BUCKET, key = "dir/photo.jpg",
  body = "jpeg" }
add{ name = "create_multipart_upload type guessed from .mp4", op = "create_multipart_upload", bucket = BUCKET,
  key = "video.mp4" }
add{ name = "put_object no extension, no type", op = "put_object", bucket = BUCKET, key = "notes", body = "n",
  known = { ["content-type"] = { objstore = "application/octet-stream", ali = false,
    why = "objstore defaults to application/octet-stream, ali-oss sends none" } },
  align = { set_headers = { ["Content-Type"] = "application/octet-stream" } } }
add{ name = "put_object type guessed from .js", op = "put_object", bucket = BUCKET, key = "app.js", body = "1;",
  known = { ["content-type"] = { objstore = "text/javascript", ali = "application/javascript",
    why = "mime tables differ: objstore follows RFC 9239, ali-oss (mime 2.x) the older type" } },
  align = { set_headers = { ["Content-Type"] = "text/javascript" } } }
add{ name = "get_object key with extension", op = "get_object", bucket = BUCKET, key = "dir/photo.jpg",
  known = { ["content-type"] = { objstore = false, ali = "image/jpeg",
    why = "ali-oss puts a type guessed from the key on every request, GET included" } },
  align = { drop_headers = { "Content-Type" } } }
add{ name = "upload_part key with extension", op = "upload_part", bucket = BUCKET, key = "video.mp4",
  body = "p", opts = { upload_id = UPLOAD_ID, part_number = 1, content_md5 = false },
  known = { ["content-type"] = { objstore = false, ali = "video/mp4",
    why = "ali-oss puts a type guessed from the key on every request, parts included" } },
  align = { drop_headers = { "Content-Type" } } }
add{ name = "copy_object to a key with extension", op = "copy_object", bucket = BUCKET, key = "copy.txt",
  opts = { src_bucket = SRC_BUCKET, src_key = "orig.txt" },
  known = { ["content-type"] = { objstore = false, ali = "text/plain",
    why = "ali-oss puts a type guessed from the key on every request; with COPY, OSS ignores it" } },
  align = { drop_headers = { "Content-Type" } } }

-- presign
add{ name = "presign GET response overrides", op = "presign", bucket = BUCKET, key = "dir/report.pdf",
  opts = { method = "GET", expires = 3600, query = { ["response-content-type"] = "application/pdf",
    ["response-content-disposition"] = "attachment; filename=\"r \195\169.pdf\"" } } }
add{ name = "presign GET version", op = "presign", bucket = BUCKET, key = "plain-key",
  opts = { method = "GET", expires = 60, version_id = VERSION_ID } }
add{ name = "presign GET ?acl (value-less)", op = "presign", bucket = BUCKET, key = "plain-key",
  opts = { method = "GET", expires = 60, query = { acl = true } } }
add{ name = "presign PUT with Content-Type", op = "presign", bucket = BUCKET, key = "upload/file name.bin",
  opts = { method = "PUT", expires = 604800, headers = { ["Content-Type"] = "application/octet-stream" } } }
add{ name = "presign HEAD", op = "presign", bucket = BUCKET, key = "hash#tag", opts = { method = "HEAD", expires = 1 } }
add{ name = "presign DELETE", op = "presign", bucket = BUCKET, key = "double//slash",
  opts = { method = "DELETE", expires = 120 } }

---------------------------------------------------------------------------
-- objstore side
---------------------------------------------------------------------------
local PREPARE = {
  put_object = function(_, k) return "put_object", k.bucket, k.key, k.body, k.opts end,
  get_object = function(_, k) return "get_object", k.bucket, k.key, k.opts end,
  head_object = function(_, k) return "head_object", k.bucket, k.key, k.opts end,
  delete_object = function(_, k) return "delete_object", k.bucket, k.key, k.opts end,
  put_object_tagging = function(_, k)
    return "put_object_tagging", k.bucket, k.key, k.opts.tags, { version_id = k.opts.version_id }
  end,
  get_object_tagging = function(_, k) return "get_object_tagging", k.bucket, k.key, k.opts end,
  delete_object_tagging = function(_, k) return "delete_object_tagging", k.bucket, k.key, k.opts end,
  delete_objects = function(_, k) return "delete_objects", k.bucket, k.opts.keys, { quiet = k.opts.quiet } end,
  copy_object = function(_, k)
    local o = {}
    local skip = { src_bucket = true, src_key = true, source_version_id = true }
    for name, v in pairs(k.opts) do if not skip[name] then o[name] = v end end
    return "copy_object", k.bucket, k.key,
      { bucket = k.opts.src_bucket, key = k.opts.src_key, version_id = k.opts.source_version_id }, o
  end,
  list_objects = function(_, k) return "list_objects", k.bucket, k.opts end,
  list_objects_v1 = function(_, k) return "list_objects_v1", k.bucket, k.opts end,
  list_multipart_uploads = function(_, k) return "list_multipart_uploads", k.bucket, k.opts end,
  create_bucket = function(_, k) return "create_bucket", k.bucket, k.opts end,
  delete_bucket = function(_, k) return "delete_bucket", k.bucket end,
  get_bucket_acl = function(_, k) return "get_bucket_acl", k.bucket end,
  put_bucket_acl = function(_, k) return "put_bucket_acl", k.bucket, k.opts.acl end,
  list_buckets = function() return "list_buckets" end,
  create_multipart_upload = function(_, k) return "create_multipart_upload", k.bucket, k.key, k.opts end,
  upload_part = function(_, k)
    return "upload_part", k.bucket, k.key, k.opts.upload_id, k.opts.part_number, k.body,
      { content_md5 = k.opts.content_md5 }
  end,
  complete_multipart_upload = function(_, k)
    return "complete_multipart_upload", k.bucket, k.key, k.opts.upload_id, k.opts.parts
  end,
  abort_multipart_upload = function(_, k) return "abort_multipart_upload", k.bucket, k.key, k.opts.upload_id end,
  upload_part_copy = function(_, k)
    local o = k.opts
    return "upload_part_copy", k.bucket, k.key, o.upload_id, o.part_number,
      { bucket = o.src_bucket, key = o.src_key, version_id = o.source_version_id }, { range = o.range }
  end,
  list_object_versions = function(_, k) return "list_object_versions", k.bucket, k.opts end,
  get_bucket_location = function(_, k) return "get_bucket_location", k.bucket end,
  bucket_exists = function(_, k) return "bucket_exists", k.bucket end,
  get_bucket_versioning = function(_, k) return "get_bucket_versioning", k.bucket end,
  put_bucket_versioning = function(_, k) return "put_bucket_versioning", k.bucket, k.opts.status end,
  get_bucket_policy = function(_, k) return "get_bucket_policy", k.bucket end,
  put_bucket_policy = function(_, k) return "put_bucket_policy", k.bucket, k.opts.policy end,
  delete_bucket_policy = function(_, k) return "delete_bucket_policy", k.bucket end,
  list_parts = function(_, k)
    return "list_parts", k.bucket, k.key, k.opts.upload_id,
      { max_parts = k.opts.max_parts, part_number_marker = k.opts.part_number_marker }
  end,
}

-- A response each operation accepts, for the capturing transport.
local CANNED_BODY = {
  delete_objects = "<DeleteResult></DeleteResult>",
  copy_object = "<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>",
  complete_multipart_upload = "<CompleteMultipartUploadResult><ETag>\"e\"</ETag></CompleteMultipartUploadResult>",
  create_multipart_upload = "<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>",
}

local unpack = table.unpack or unpack -- luacheck: ignore 143
local function pack(...) return { n = select("#", ...), ... } end

local function new_client(k, transport)
  local c = objstore.new{ provider = "oss", region = REGION, endpoint = ENDPOINT, access_key = AK, secret_key = SK,
    -- V4 is the default: the V4 variants leave `signature` unset.
    session_token = k.sts, signature = k.sig ~= "v4" and k.sig or nil, transport = transport or {
      request = function() error("oss_shape_spec: no request may be sent") end } }
  c.now = function() return k.time end
  return c
end

-- Returns the request objstore would send (via prepare, or for presign
-- the URL) and a problem when prepare did not return one; then the
-- request is taken from a capturing transport instead, so the shape is
-- still compared.
local function objstore_request(k)
  if k.op == "presign" then
    local c = new_client(k)
    local o = k.opts
    local url = assert(c:presign(o.method, k.bucket, k.key, { expires_in = o.expires, query = o.query,
      headers = o.headers, version_id = o.version_id, time = k.time }))
    return { method = o.method, url = url, headers = {} }
  end
  local c = new_client(k)
  local req = c:prepare(PREPARE[k.op](c, k))
  if type(req) == "table" and type(req.url) == "string" then return req end
  local captured
  c = new_client(k, { request = function(_, r)
    captured = r
    return { status = 200, headers = {}, body = CANNED_BODY[k.op] or "" }
  end })
  local args = pack(PREPARE[k.op](c, k))
  c[args[1]](c, unpack(args, 2, args.n))
  return captured, "prepare('" .. k.op .. "') did not return the request (got " .. type(req) .. ")"
end

---------------------------------------------------------------------------
-- Normalisation
---------------------------------------------------------------------------
local function pct_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function pct_encode(s)
  return (s:gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end))
end

-- Splits a URL; the path is normalised per '/'-separated segment, so '/'
-- and '%2F' stay distinct while %-case and optional escapes do not matter.
local function parse_url(u)
  local scheme, host, rest = u:match("^(%a+)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  local path, query = rest:match("^([^?]*)%??(.*)$")
  local segs = {}
  for seg in (path .. "/"):gmatch("([^/]*)/") do segs[#segs + 1] = pct_encode(pct_decode(seg)) end
  local params = {}
  for part in query:gmatch("[^&]+") do
    local name, value = part:match("^([^=]*)=?(.*)$")
    params[#params + 1] = { pct_decode(name), pct_decode(value) } -- R4: "k" == "k="
  end
  table.sort(params, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  return { scheme = scheme:lower(), host = host:lower(), path = table.concat(segs, "/"), params = params }
end

local function show_params(p)
  local out = {}
  for i, kv in ipairs(p) do out[i] = kv[1] .. "=" .. kv[2] end
  return table.concat(out, "&")
end

-- Names objstore would send twice (same name, different letter case).
local function duplicate_headers(h)
  local seen, dups = {}, {}
  for k in pairs(h or {}) do
    local l = k:lower()
    if seen[l] then dups[#dups + 1] = seen[l] .. " / " .. k end
    seen[l] = k
  end
  table.sort(dups)
  return dups
end

-- A URL curl sends as it is: path and query only in RFC 3986 characters,
-- no fragment, '%' always followed by two hex digits.
local function url_problem(u)
  local rest = u:match("^%a+://[^/?#]+(.*)$")
  if not rest then return "not an absolute URL" end
  local path, query = rest:match("^([^?]*)(.*)$")
  if path:find("[^%w%-%._~%%/!$&'()*+,;=:@]") then return "path has a character that must be encoded" end
  if query:find("[^%w%-%._~%%/!$&'()*+,;=:@?]") then return "query has a character that must be encoded" end
  if rest:gsub("%%%x%x", ""):find("%%") then return "stray '%' (not %XX)" end
  return nil
end

local function lower_headers(h)
  local out = {}
  for k, v in pairs(h or {}) do out[k:lower()] = tostring(v) end
  return out
end

local function utf8_char(n)
  if n < 0x80 then return string.char(n) end
  if n < 0x800 then return string.char(0xC0 + math.floor(n / 64), 0x80 + n % 64) end
  if n < 0x10000 then
    return string.char(0xE0 + math.floor(n / 4096), 0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
  end
  return string.char(0xF0 + math.floor(n / 262144), 0x80 + math.floor(n / 4096) % 64,
    0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
end

-- XML text content: declaration and inter-tag whitespace dropped, entities decoded.
local function xml_canon(s)
  s = s:gsub("^%s*<%?xml.-%?>", ""):gsub(">%s+<", "><"):gsub("^%s+", ""):gsub("%s+$", "")
  local ents = { amp = "&", lt = "<", gt = ">", quot = "\"", apos = "'" }
  return (s:gsub("&(#?[%w]+);", function(e)
    if e:sub(1, 2) == "#x" then return utf8_char(tonumber(e:sub(3), 16)) end
    if e:sub(1, 1) == "#" then return utf8_char(tonumber(e:sub(2))) end
    return ents[e]
  end))
end

local function nonnull(v)
  if v == nil or v == cjson.null then return nil end
  return v
end

---------------------------------------------------------------------------
-- Running ali-oss
---------------------------------------------------------------------------
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = io.popen("cd " .. q(ROOT) .. " && { " .. cmd .. " ; } 2>&1; echo \"__rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return rc == 0, out:gsub("__rc=%d+%s*$", ""), rc
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function ensure_ali_oss() servers.node_package("ali-oss") end

local function pinned_version()
  local pkg = cjson.decode(read_file(ROOT .. "/package.json"))
  return pkg.devDependencies and pkg.devDependencies["ali-oss"]
end

---------------------------------------------------------------------------
-- Comparison
---------------------------------------------------------------------------
local IGNORED = { ["user-agent"] = true, host = true, authorization = true, date = true, ["x-oss-date"] = true,
  ["content-length"] = true }

local function compare(k, o, ali)
  local problems = {}
  local function fail(fmt, ...) problems[#problems + 1] = string.format(fmt, ...) end
  local a, g = ali.native, ali.aligned or ali.native
  local known = k.known or {}

  -- method and URL
  if tostring(o.method):upper() ~= a.method then fail("method: objstore %s, ali-oss %s", o.method, a.method) end
  local bad = url_problem(o.url)
  if bad then fail("objstore URL %s: %s", o.url, bad) end
  local ou, au = parse_url(o.url), parse_url(a.url)
  if not ou or not au then
    fail("unparsable URL: objstore %s, ali-oss %s", tostring(o.url), tostring(a.url))
    return problems
  end
  if ou.scheme ~= au.scheme then fail("scheme: objstore %s, ali-oss %s", ou.scheme, au.scheme) end
  if ou.host ~= au.host then fail("host: objstore %s, ali-oss %s", ou.host, au.host) end
  if ou.path ~= au.path then fail("path: objstore %s, ali-oss %s", ou.path, au.path) end
  if show_params(ou.params) ~= show_params(au.params) then
    fail("query: objstore %s\n        ali-oss  %s", show_params(ou.params), show_params(au.params))
  end
  if k.op == "presign" then return problems end

  -- headers
  for _, d in ipairs(duplicate_headers(o.headers)) do fail("objstore sends a header twice: %s", d) end
  local oh, ah, gh = lower_headers(o.headers), a.headers, g.headers
  local names, seen = {}, {}
  for n in pairs(oh) do if not seen[n] then seen[n] = true; names[#names + 1] = n end end
  for n in pairs(ah) do if not seen[n] then seen[n] = true; names[#names + 1] = n end end
  table.sort(names)
  for _, n in ipairs(names) do
    local ov, av = oh[n], ah[n]
    if known[n] then
      local want_o, want_a = known[n].objstore or nil, known[n].ali or nil
      if ov ~= want_o or av ~= want_a then
        fail("header %s (documented difference: %s): expected objstore %s / ali-oss %s, got %s / %s", n,
          known[n].why, tostring(want_o), tostring(want_a), tostring(ov), tostring(av))
      end
    elseif IGNORED[n] then -- luacheck: ignore 542
    elseif n == "x-oss-copy-source" then -- R3
      if not ov or not av or pct_decode(ov) ~= pct_decode(av) then
        fail("x-oss-copy-source (decoded): objstore %s, ali-oss %s", tostring(ov), tostring(av))
      end
    elseif n == "content-md5" and k.xml_body then -- luacheck: ignore 542
      -- R2: each over its own body; objstore's checked below
    elseif n == "x-oss-metadata-directive" and ov == "COPY" and av == nil then -- luacheck: ignore 542
      -- objstore states the default directive; ali-oss leaves it implicit.
    elseif ov ~= av then
      fail("header %s: objstore %s, ali-oss %s", n, tostring(ov), tostring(av))
    end
  end
  for n, kn in pairs(known) do
    if not seen[n] and (kn.objstore or kn.ali) then
      fail("header %s (documented difference: %s) is absent on both sides", n, kn.why)
    end
  end

  -- body and its length
  local ob, ab, gb = o.body, nonnull(a.body), nonnull(g.body)
  if type(ob) ~= "string" and ob ~= nil then fail("objstore body is not a string (%s)", type(ob)) end
  if ob == "" and o.body_length == nil then ob = nil end
  local olen = o.body_length or (ob and #ob) or 0
  if k.xml_body then
    if not ob or not ab then
      fail("XML body missing: objstore %s, ali-oss %s", tostring(ob), tostring(ab))
    elseif xml_canon(ob) ~= xml_canon(ab) then
      fail("XML body differs:\n  objstore %s\n  ali-oss  %s", ob, ab)
    end
    if gb ~= ob then fail("aligned ali-oss run did not get objstore's body") end
    if oh["content-md5"] ~= gh["content-md5"] then
      fail("content-md5 of objstore's body: objstore %s, ali-oss %s", tostring(oh["content-md5"]),
        tostring(gh["content-md5"]))
    end
  elseif a.streamed then
    if ob ~= k.body then fail("objstore body %q, expected %q", tostring(ob), tostring(k.body)) end
  elseif (ob or "") ~= (ab or "") then
    fail("body: objstore %q, ali-oss %q", tostring(ob), tostring(ab))
  end
  local lh = k.xml_body and gh or ah
  if lh["content-length"] and tonumber(lh["content-length"]) ~= olen then
    fail("content length: objstore %s, ali-oss %s", tostring(olen), lh["content-length"])
  end

  -- dates (R1) and the signature
  local iso = os.date("!%Y%m%dT%H%M%SZ", k.time)
  local http = os.date("!%a, %d %b %Y %H:%M:%S GMT", k.time)
  local want_auth = gh.authorization
  if k.sig == "v4" then
    if oh["x-oss-date"] ~= iso or ah["x-oss-date"] ~= iso then
      fail("x-oss-date: expected %s, objstore %s, ali-oss %s", iso, tostring(oh["x-oss-date"]),
        tostring(ah["x-oss-date"]))
    end
    if oh.date or ah.date then fail("V4 request with a Date header: objstore %s, ali-oss %s", tostring(oh.date),
      tostring(ah.date)) end
  elseif k.explicit_date then
    if oh["x-oss-date"] ~= http or ah["x-oss-date"] ~= http or oh.date then
      fail("x-oss-date: expected %s, objstore %s (Date %s), ali-oss %s", http, tostring(oh["x-oss-date"]),
        tostring(oh.date), tostring(ah["x-oss-date"]))
    end
  else
    if oh.date ~= http or oh["x-oss-date"] then
      fail("objstore V1 date: expected Date %s, got Date %s, x-oss-date %s", http, tostring(oh.date),
        tostring(oh["x-oss-date"]))
    end
    if ah["x-oss-date"] ~= http or ah.date then
      fail("ali-oss V1 date: expected x-oss-date %s, got %s (Date %s)", http, tostring(ah["x-oss-date"]),
        tostring(ah.date))
    end
    want_auth = g.v1_date_authorization
  end
  if oh.authorization ~= want_auth then
    fail("Authorization:\n  objstore %s\n  ali-oss  %s%s", tostring(oh.authorization), tostring(want_auth),
      g.v1_date_string_to_sign and ("\n  ali-oss V1 string to sign (Date form):\n" .. g.v1_date_string_to_sign)
      or "")
  end
  return problems
end

---------------------------------------------------------------------------
-- The spec
---------------------------------------------------------------------------
describe("OSS request shape matches ali-oss", function()
  local requests, results, prepare_problems = {}, {}, {}
  local version, setup_error

  lazy_setup(function()
    local ok, err = pcall(function()
      ensure_ali_oss()
      local payload = {}
      for i, k in ipairs(CASES) do
        local req, problem = objstore_request(k)
        requests[k.id], prepare_problems[k.id] = req, problem
        local align = k.align and deepcopy(k.align) or nil
        local oh = lower_headers(req.headers)
        local function set(name, value)
          align = align or {}
          align.set_headers = align.set_headers or {}
          align.set_headers[name] = value
        end
        if k.xml_body or k.align_body then
          align = align or {}
          align.body = req.body
        end
        if k.op == "copy_object" or k.op == "upload_part_copy" then
          if oh["x-oss-copy-source"] then set("x-oss-copy-source", oh["x-oss-copy-source"]) end
          if oh["x-oss-metadata-directive"] == "COPY" then set("x-oss-metadata-directive", "COPY") end
        end
        payload[i] = { id = k.id, sig = k.sig, sts = k.sts or cjson.null, time = k.time, access_key = AK,
          secret_key = SK, region = REGION, endpoint = ENDPOINT, op = k.op, bucket = k.bucket or cjson.null,
          key = k.key or cjson.null, body = k.body or cjson.null, opts = k.opts, align = align or cjson.null }
      end
      local dir = os.tmpname()
      local infile, outfile = dir .. ".in.json", dir .. ".out.json"
      write_file(infile, cjson.encode{ cases = payload })
      -- A time zone far from UTC: neither side may use local time.
      local rok, out = sh("TZ=Asia/Shanghai node spec/support/ali_oss_shape.js < " .. q(infile) .. " > "
        .. q(outfile))
      local text = rok and read_file(outfile) or nil
      os.remove(infile)
      os.remove(outfile)
      os.remove(dir)
      assert(rok, "spec/support/ali_oss_shape.js failed:\n" .. out)
      local doc = cjson.decode(text)
      version = doc.version
      for _, r in ipairs(doc.cases) do results[r.id] = r end
    end)
    if not ok then setup_error = tostring(err) end
  end)

  it("runs the ali-oss version pinned in package.json", function()
    assert(not setup_error, setup_error)
    assert.equals(pinned_version(), version)
  end)

  it("prepare is a dry run: get_object with file= leaves the file alone", function()
    local path = os.tmpname()
    write_file(path, "precious")
    local c = new_client{ sig = "v4", time = T0 }
    local req = c:prepare("get_object", BUCKET, "plain-key", { file = path })
    local after = read_file(path)
    os.remove(path)
    assert.equals("table", type(req))
    assert.equals("precious", after)
  end)

  for _, k in ipairs(CASES) do
    it(k.id, function()
      assert(not setup_error, setup_error)
      local r = assert(results[k.id], "no ali-oss result")
      assert(not nonnull(r.error), "ali-oss failed: " .. tostring(nonnull(r.error)))
      local problems = compare(k, requests[k.id], r)
      if prepare_problems[k.id] then table.insert(problems, 1, prepare_problems[k.id]) end
      if #problems > 0 then
        error(k.id .. ":\n- " .. table.concat(problems, "\n- ") .. "\n  objstore URL " .. tostring(requests[k.id].url)
          .. "\n  ali-oss  URL " .. tostring(r.native.url), 0)
      end
    end)
  end
end)
