--- The S3 front server: one nginx content handler that answers S3 clients
-- (aws-cli, boto3, SDKs, curl with presigned URLs) for several tenants and
-- stores through objstore's client, with cosockets (issue 21, first slice).
--
--     location / {
--       lua_check_client_abort on;
--       content_by_lua_block {
--         require("objstore.front.server").handle{
--           tenants = "/etc/objstore-front/tenants.json", region = "us-east-1",
--           domain = "s3.example.com",            -- virtual-host addressing (optional)
--           store = { endpoint = os.getenv("FRONT_STORE_ENDPOINT"), region = "us-east-1",
--                     access_key = os.getenv("FRONT_STORE_ACCESS_KEY"),
--                     secret_key = os.getenv("FRONT_STORE_SECRET_KEY") } }
--       }
--     }
--
-- Each request is verified (objstore.front.sigv4) with the tenant keys of
-- objstore.front.tenants, mapped to the store bucket and prefix, checked
-- against the mapping's `allow`, and performed with the store's
-- credentials: ListBuckets, ListObjectsV2 and V1, HeadBucket, HeadObject,
-- GetObject, PutObject (streamed, its payload hash, aws-chunked signatures
-- and x-amz-checksum-* verified as it streams; the last piece is sent to
-- the store only once the whole body is verified), DeleteObject,
-- DeleteObjects, CopyObject, the multipart operations (UploadPart checked
-- like PutObject) and UploadPartCopy; a copy's source is mapped through
-- the same tenant's mappings. Every other
-- operation, query parameter or x-amz-* header it does not know is
-- answered 501 NotImplemented. Store errors come back as S3 errors without
-- the store's bucket, prefix or message. Every answer carries
-- x-amz-request-id. Needs OpenResty's ngx: only nginx handlers require it.
-- @module objstore.front.server
local objstore = require "objstore"
local core = require "objstore.core"
local errors = require "objstore.errors"
local onx = require "objstore.openresty"
local sigv4 = require "objstore.front.sigv4"
local aws_chunked = require "objstore.front.aws_chunked"
local s3_error = require "objstore.front.s3_error"
local tenants = require "objstore.front.tenants"
local limits = require "objstore.front.limits"
local counters = require "objstore.front.counters"
local xml = require "objstore.xml"
local checksum = require "objstore.checksum"

local type, pairs, ipairs, tostring, tonumber, pcall, rawget =
  type, pairs, ipairs, tostring, tonumber, pcall, rawget
local sub, gsub = string.sub, string.gsub
local concat = table.concat
local hmac = core.hash.hmac
local uri_encode = core.encode.uri_encode

local _M = { _VERSION = core._VERSION }

local XMLNS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
-- The most buckets a tenant's bucket space holds (S3's own quota is 100 to
-- 1000 per account): ListBuckets reads one page of markers, never more.
local MAX_CREATED_BUCKETS = 1000
-- defined with the handlers, used before them
local space_bucket_exists, bucket_space_op, store_unversioned
local MAX_HEADERS = 100
local escape = s3_error.escape

local function s3err(code, status, message, extra)
  local e = { code = code, status = status, message = message, retryable = false }
  for k, v in pairs(extra or {}) do e[k] = v end
  return errors.new(e)
end

local function not_implemented(what)
  return s3err("NotImplemented", 501, "A header or operation you provided implies functionality that is not "
    .. "implemented: " .. what)
end

-- Per worker: the tenants registry and the store client, made on first use
-- (never at require: init_by_lua has no environment).
local state
-- The tenants set the master loaded (preload), inherited by every worker.
local preloaded

--- preload(path)
-- Loads the tenants file in nginx's master (init_by_lua_block), so that a
-- worker whose first request comes while the file is invalid keeps these
-- tenants instead of answering 503 (workers load lazily, each on its first
-- request). An invalid file here is logged and ignored.
function _M.preload(path)
  if type(path) ~= "string" then return end
  local set, err = tenants.load(path)
  if set then
    preloaded = { path = path, set = set }
  else
    local ngx = rawget(_G, "ngx")
    if ngx and ngx.log then ngx.log(ngx.ERR, "objstore.front: cannot preload the tenants: ", tostring(err)) end
  end
end

local function get_state(ngx, config)
  if state then return state end
  if type(config) ~= "table" or type(config.tenants) ~= "string" or type(config.store) ~= "table" then
    errors.argument("front.server.handle", 1, "config", "must be { tenants = path, store = { endpoint, ... } }")
  end
  local store = config.store
  if type(store.secret_key) ~= "string" or store.secret_key == "" or type(store.access_key) ~= "string" then
    errors.argument("front.server.handle", 1, "config.store", "needs access_key and secret_key")
  end
  local log = function(level, message) ngx.log(level == "error" and ngx.ERR or ngx.NOTICE, message) end
  local shared = config.shared_dict and ngx.shared[config.shared_dict]
  if config.shared_dict and not shared then
    errors.argument("front.server.handle", 1, "config.shared_dict", "names no lua_shared_dict: "
      .. tostring(config.shared_dict))
  end
  local limits_dict = config.limits_dict and ngx.shared[config.limits_dict]
  if config.limits_dict and not limits_dict then
    errors.argument("front.server.handle", 1, "config.limits_dict", "names no lua_shared_dict: "
      .. tostring(config.limits_dict))
  end
  local reg, err = tenants.new(config.tenants, { log = log, now = ngx.time, shared = shared,
    fallback = preloaded and preloaded.path == config.tenants and preloaded.set or nil })
  if not reg then return nil, err end
  local client = objstore.new{
    endpoint = store.endpoints == nil and store.endpoint or nil, endpoints = store.endpoints,
    region = store.region or "us-east-1", addressing = "path",
    access_key = store.access_key, secret_key = store.secret_key,
    timeout = store.timeout or 600, connect_timeout = store.connect_timeout or 5,
    retry = { max_attempts = 3 },
    -- objstore's own families next to the front's counters, in one text
    metrics = config.metrics_dict and counters.registry(config.metrics_dict) or nil,
  }
  state = {
    reg = reg, client = client, limits = limits_dict, region = config.region or "us-east-1",
    domain = config.domain and ("." .. config.domain:lower()) or nil,
    -- the key of the continuation tokens' tags (see seal)
    token_key = hmac("sha256", store.secret_key, "objstore-front continuation token"),
  }
  return state
end

-- Continuation tokens. The store's token may hold the store key it stopped
-- at, prefix included (radosgw's does), and the prefix must not reach the
-- tenant: where the token starts with the listing's store prefix, the
-- prefix is cut off ("p" .. rest; otherwise "r" .. token, an opaque one
-- such as Amazon's). What is left is the tenant's own key name, or opaque,
-- so nothing needs hiding, only binding: an HMAC tag over the tenant,
-- bucket, prefix and delimiter of the listing and the token, so that a
-- client can neither forge one nor carry it to another listing.
local function tag_of(st, binding, body)
  return sub(hmac("sha256", st.token_key, binding .. "\0" .. body), 1, 16)
end

local function seal(st, binding, sprefix, token)
  local body
  if sprefix ~= "" and sub(token, 1, #sprefix) == sprefix then
    body = "p" .. sub(token, #sprefix + 1)
  else
    body = "r" .. token
  end
  local b64 = ngx.encode_base64(tag_of(st, binding, body) .. body)
  return (gsub(gsub(b64, "+", "-"), "/", "_"))
end

local function unseal(st, binding, sprefix, sealed)
  local raw = ngx.decode_base64((gsub(gsub(sealed, "-", "+"), "_", "/")))
  if not raw or #raw < 17 then return nil end
  local tag, body = sub(raw, 1, 16), sub(raw, 17)
  if not sigv4.constant_time_equal(tag_of(st, binding, body), tag) then return nil end
  local kind, rest = sub(body, 1, 1), sub(body, 2)
  if kind == "p" then return sprefix .. rest end
  if kind == "r" then return rest end
  return nil
end

-- Only %XX is decoded in a path ("+" is a plus there).
local function unescape_path(s)
  return ngx.unescape_uri((gsub(s, "%+", "%%2B")))
end

-- encoding-type=url: S3's URI encoding, '/' kept (the C core's).
local function url_encode(s)
  return uri_encode(s, true)
end

local function send_xml(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/xml"
  ngx.header["Content-Length"] = #body
  if ngx.req.get_method() ~= "HEAD" then
    ngx.ctx.objstore_front.bytes_out = #body
    ngx.print(body)
  end
  return ngx.exit(status)
end

local function fail(ctx, err)
  ctx.code = err and err.code  -- for objstore.front.counters
  local body, status = s3_error.render(err, { resource = ctx.resource, request_id = ctx.rid })
  if ngx.req.get_method() == "HEAD" then
    -- The head sent first: an ngx.exit(status) before it would be taken
    -- by the server's error_page (nginx_error), losing this request's ctx.
    ngx.status = status
    ngx.header["Content-Type"] = "application/xml"
    ngx.send_headers()
    return ngx.exit(status)
  end
  return send_xml(status, body)
end

local STORE_MESSAGES = s3_error.MESSAGES

local function store_fail(ctx, err)
  local code, status = err and err.code, err and err.status
  if status == 304 then
    ngx.status = 304
    return ngx.exit(304)
  end
  local expected = status == 404 or status == 412 or status == 416
  ngx.log(expected and ngx.INFO or ngx.WARN, "objstore.front: ", ctx.op or "?", " on the store failed: ",
    tostring(err))
  local s = s3_error.STATUS[code]
  if not s and status == 404 and ctx.method == "HEAD" then code, s = "NoSuchKey", 404 end
  if s then
    return fail(ctx, s3err(code, s, STORE_MESSAGES[code] or code))
  end
  if code == "NoSuchBucket" then
    return fail(ctx, s3err("NoSuchBucket", 404, "The specified bucket does not exist", { bucket_name = ctx.bucket }))
  end
  -- Another refusal of the request itself (a 4xx: a copy onto itself
  -- without REPLACE is InvalidRequest) keeps its status and code, with a
  -- message of the front's: as a 500 the client would retry it. 401/403
  -- are the front's own credentials refused by the store: internal.
  if type(status) == "number" and status >= 400 and status < 500 and status ~= 401 and status ~= 403
      and type(code) == "string" and code:find("^%u%a+$") and #code <= 64 then
    return fail(ctx, s3err(code, status, "The request was refused: " .. code))
  end
  if status == 503 then return fail(ctx, s3err("ServiceUnavailable", 503, "Please reduce your request rate.")) end
  return fail(ctx, s3err("InternalError", 500, "We encountered an internal error. Please try again."))
end

-- x-amz-* request headers understood; any other is NotImplemented.
local AMZ_OK = {
  ["x-amz-date"] = true, ["x-amz-content-sha256"] = true, ["x-amz-decoded-content-length"] = true,
  ["x-amz-trailer"] = true, ["x-amz-user-agent"] = true, ["x-amz-checksum-mode"] = true,
  ["x-amz-sdk-checksum-algorithm"] = true, ["x-amz-security-token"] = true,
}

-- Headers the front reads or passes to the store: a repeated one is a
-- table in ngx.req.get_headers (the store client threw on it: a 500), and
-- nginx's $http_* variables see only its first value while the signature
-- covers all of them joined: refused.
local SINGLE = { ["content-type"] = true, ["content-md5"] = true, ["content-encoding"] = true,
  ["content-length"] = true, ["transfer-encoding"] = true, ["cache-control"] = true,
  ["content-disposition"] = true, ["content-language"] = true, expires = true, ["if-match"] = true,
  ["if-none-match"] = true, ["if-modified-since"] = true, ["if-unmodified-since"] = true, range = true }

-- The x-amz-checksum-* headers of a whole body, checked as it streams.
local CHECKSUM_HEADERS = aws_chunked.CHECKSUMS

-- x-amz-* headers an operation understands beyond AMZ_OK: `meta`
-- (x-amz-meta-*), `checksums` (CHECKSUM_HEADERS), `names`. The checksum
-- algorithm of a new upload is accepted and not passed on: each part's
-- checksum is checked here, radosgw knows none of them.
local OP_HEADERS = {
  PutObject = { meta = true, checksums = true },
  UploadPart = { checksums = true },
  -- no object lock here: the governance bypass has nothing to bypass
  DeleteObjects = { checksums = true, names = { ["x-amz-bypass-governance-retention"] = true } },
  PutObjectTagging = { checksums = true },
  CompleteMultipartUpload = { checksums = true },
  CreateMultipartUpload = { meta = true, names = { ["x-amz-checksum-algorithm"] = true } },
  CopyObject = { meta = true, names = { ["x-amz-copy-source"] = true, ["x-amz-metadata-directive"] = true,
    ["x-amz-copy-source-if-match"] = true, ["x-amz-copy-source-if-none-match"] = true } },
  UploadPartCopy = { names = { ["x-amz-copy-source"] = true, ["x-amz-copy-source-range"] = true,
    ["x-amz-copy-source-if-match"] = true } },
}

-- The operations that create an object (its ACL given at creation).
local WRITES_OBJECT = { PutObject = true, CopyObject = true, CreateMultipartUpload = true, CreateBucket = true }

local function header_ok(name, extra)
  if AMZ_OK[name] then return true end
  if not extra then return false end
  return extra.meta and sub(name, 1, 11) == "x-amz-meta-" or extra.checksums and CHECKSUM_HEADERS[name] ~= nil
    or extra.names ~= nil and extra.names[name] == true
end

-- The conditional headers each operation honours: GET and HEAD all four
-- (serve_object), PutObject If-Match / If-None-Match. Anywhere else one is
-- NotImplemented, never silently dropped: the client would believe its
-- write was conditional.
local CONDITIONALS = { ["if-match"] = true, ["if-none-match"] = true, ["if-modified-since"] = true,
  ["if-unmodified-since"] = true }
local CONDITIONS_OK = { GetObject = CONDITIONALS, HeadObject = CONDITIONALS,
  PutObject = { ["if-match"] = true, ["if-none-match"] = true } }

local function check_headers(headers, op)
  local extra = OP_HEADERS[op]
  for name, v in pairs(headers) do
    name = name:lower()
    if type(v) == "table" and (SINGLE[name] or sub(name, 1, 6) == "x-amz-") then
      return s3err("InvalidArgument", 400, "The header " .. name .. " is repeated")
    end
    if CONDITIONALS[name] and not (CONDITIONS_OK[op] and CONDITIONS_OK[op][name]) then
      return not_implemented("the header " .. name .. " on " .. tostring(op or "ListBuckets"))
    end
    -- The canned ACL every object has anyway (rclone sends it on every
    -- upload): accepted and not passed on; any other ACL is NotImplemented.
    local private = name == "x-amz-acl" and v == "private" and WRITES_OBJECT[op]
    if sub(name, 1, 6) == "x-amz-" and not private and not header_ok(name, extra) then
      return not_implemented("the header " .. name)
    end
  end
end

-- Query parameters each operation understands (besides the presigned
-- X-Amz-* ones and x-id); any other is NotImplemented.
local Q_LIST = { ["list-type"] = true, prefix = true, delimiter = true, ["max-keys"] = true,
  ["continuation-token"] = true, ["start-after"] = true, ["encoding-type"] = true, ["fetch-owner"] = true,
  marker = true }
local Q_GET = { ["response-content-type"] = true, ["response-content-disposition"] = true,
  ["response-content-encoding"] = true, ["response-content-language"] = true,
  ["response-cache-control"] = true, ["response-expires"] = true }
local Q_NONE = {}
local Q_UPLOADS = { uploads = true }
local Q_LIST_UPLOADS = { uploads = true, prefix = true, delimiter = true, ["key-marker"] = true,
  ["upload-id-marker"] = true, ["max-uploads"] = true, ["encoding-type"] = true }
local Q_UPLOAD = { uploadId = true }
local Q_PART = { uploadId = true, partNumber = true }
local Q_LIST_PARTS = { uploadId = true, ["max-parts"] = true, ["part-number-marker"] = true }
local Q_DELETE = { delete = true }
local Q_TAGGING = { tagging = true }
local Q_VERSIONS = { versions = true, prefix = true, delimiter = true, ["key-marker"] = true,
  ["version-id-marker"] = true, ["max-keys"] = true, ["encoding-type"] = true }

local function check_query(args, allowed)
  for name, v in pairs(args) do
    local n = name:lower()
    if not allowed[name] and n ~= "x-id" and sub(n, 1, 6) ~= "x-amz-" then
      return not_implemented("the query parameter " .. name)
    end
    if type(v) == "table" then
      return s3err("InvalidArgument", 400, "The query parameter " .. name .. " is repeated")
    end
  end
end

local function arg(args, name)
  local v = args[name]
  if v == true then return "" end
  return v
end

-- ListBuckets: the tenant's buckets.
local function list_buckets(ctx)
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult ', XMLNS, '><Owner><ID>',
    escape(ctx.tenant.name), '</ID><DisplayName>', escape(ctx.tenant.name), '</DisplayName></Owner><Buckets>' }
  local names = {}
  for _, name in ipairs(ctx.st.reg:buckets(ctx.tenant)) do names[#names + 1] = { name } end
  local sp = ctx.tenant.space
  if sp then
    -- the markers of the tenant's created buckets: their LastModified is
    -- the creation date
    local mb, mk = tenants.space_marker(ctx.tenant, "")
    local seen = 0
    for o, err in ctx.st.client:list_objects_iter(mb, { prefix = mk }) do
      if not o then return store_fail(ctx, err) end
      seen = seen + 1
      if seen > MAX_CREATED_BUCKETS then break end -- CreateBucket keeps them under it
      local name = sub(o.key, #mk + 1)
      if not tenants.bucket_problem(name) and not ctx.tenant.buckets[name] then
        names[#names + 1] = { name, o.last_modified }
      end
    end
    table.sort(names, function(a, b) return a[1] < b[1] end)
  end
  for _, n in ipairs(names) do
    out[#out + 1] = '<Bucket><Name>' .. escape(n[1]) .. '</Name><CreationDate>'
      .. escape(n[2] or "2000-01-01T00:00:00.000Z") .. '</CreationDate></Bucket>'
  end
  out[#out + 1] = '</Buckets></ListAllMyBucketsResult>'
  return send_xml(200, concat(out))
end

local function el(out, name, value, enc)
  if value == nil then return end
  value = tostring(value)
  if enc then value = url_encode(value) end
  out[#out + 1] = "<" .. name .. ">" .. escape(value) .. "</" .. name .. ">"
end

-- ListObjectsV2 and V1, keys and common prefixes un-prefixed.
-- A count parameter (max-keys, max-parts, max-uploads): plain decimal
-- digits only, as S3 reads them (tonumber would take "0x10", " 5", "1e2"
-- and "inf"), capped at `cap`; nil when absent.
local function count_arg(args, name, cap)
  if args[name] == nil then return nil end
  local v = arg(args, name)
  if type(v) ~= "string" or not v:find("^%d+$") or #v > 10 or tonumber(v) > 2147483647 then
    return nil, s3err("InvalidArgument", 400, "Provided " .. name .. " not an integer or within integer range")
  end
  local n = tonumber(v)
  if n > cap then n = cap end
  return n
end

local function list_objects(ctx, args)
  local v2 = arg(args, "list-type") == "2"
  if args["list-type"] ~= nil and not v2 then
    return fail(ctx, s3err("InvalidArgument", 400, "Invalid List Type specified"))
  end
  -- The owner of every object is the tenant (as ListBuckets says): V1
  -- lists it always, V2 with fetch-owner=true, as S3 does.
  local owner = ""
  if not v2 or arg(args, "fetch-owner") == "true" then
    owner = "<Owner><ID>" .. escape(ctx.tenant.name) .. "</ID><DisplayName>" .. escape(ctx.tenant.name)
      .. "</DisplayName></Owner>"
  end
  local enc = arg(args, "encoding-type")
  if enc ~= nil and enc ~= "url" then
    return fail(ctx, s3err("InvalidArgument", 400, "Invalid Encoding Method specified in Request"))
  end
  local max, merr = count_arg(args, "max-keys", 1000)
  if merr then return fail(ctx, merr) end
  max = max or 1000
  local sb, sprefix = ctx.store_bucket, ctx.store_prefix
  local prefix = arg(args, "prefix") or ""
  local delimiter = arg(args, "delimiter")
  if delimiter == "" then delimiter = nil end
  local binding = ctx.tenant.name .. "\0" .. ctx.bucket .. "\0" .. prefix .. "\0" .. tostring(delimiter)
  local opts = { prefix = sprefix .. prefix, delimiter = delimiter, max_keys = max }
  local token, start_after, marker = arg(args, "continuation-token"), arg(args, "start-after"), arg(args, "marker")
  -- A NUL (%00) in these reaches the store, whose answer is then not XML
  -- (a character reference &#0;): refused here as S3 does, not a 500.
  for _, v in ipairs({ prefix, delimiter or "", start_after or "", marker or "" }) do
    if v:find("%z") then
      return fail(ctx, s3err("InvalidArgument", 400, "A prefix, delimiter, start-after or marker must not "
        .. "contain a NUL character"))
    end
  end
  if v2 then
    if token == "" then token = nil end -- as absent, as S3 reads it
    if token then
      local t = unseal(ctx.st, binding, sprefix, token)
      if not t then return fail(ctx, s3err("InvalidArgument", 400, "The continuation token provided is incorrect")) end
      opts.continuation_token = t
    end
    if start_after and start_after ~= "" then opts.start_after = sprefix .. start_after end
  elseif marker and marker ~= "" then
    opts.marker = sprefix .. marker
  end
  local res, err
  if max == 0 then
    res = { contents = {}, common_prefixes = {}, is_truncated = false }
  elseif v2 then
    res, err = ctx.st.client:list_objects(sb, opts)
  else
    res, err = ctx.st.client:list_objects_v1(sb, opts)
  end
  if not res then return store_fail(ctx, err) end
  local function strip(k)
    if type(k) == "string" and sub(k, 1, #sprefix) == sprefix then return sub(k, #sprefix + 1) end
    return nil
  end
  local isurl = enc == "url"
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult ', XMLNS, '>' }
  el(out, "Name", ctx.bucket)
  el(out, "Prefix", prefix, isurl)
  local items, prefixes = {}, {}
  for _, o in ipairs(res.contents or {}) do
    local k = strip(o.key)
    if k then
      items[#items + 1] = "<Contents><Key>" .. escape(isurl and url_encode(k) or k) .. "</Key><LastModified>"
        .. escape(o.last_modified or "") .. "</LastModified><ETag>" .. escape(o.etag or "") .. "</ETag><Size>"
        .. tostring(tonumber(o.size) or 0) .. "</Size>" .. owner .. "<StorageClass>"
        .. escape(o.storage_class or "STANDARD")
        .. "</StorageClass></Contents>"
    else
      ngx.log(ngx.WARN, "objstore.front: the store listed a key outside the prefix; dropped")
    end
  end
  for _, p in ipairs(res.common_prefixes or {}) do
    local k = strip(p.prefix)
    if k then prefixes[#prefixes + 1] = "<CommonPrefixes><Prefix>" .. escape(isurl and url_encode(k) or k)
      .. "</Prefix></CommonPrefixes>" end
  end
  local truncated = res.is_truncated == true or res.is_truncated == "true"
  if v2 then
    el(out, "KeyCount", #items + #prefixes)
    el(out, "MaxKeys", max)
    el(out, "Delimiter", delimiter, isurl)
    el(out, "IsTruncated", truncated and "true" or "false")
    el(out, "ContinuationToken", token)
    if truncated and res.next_continuation_token then
      el(out, "NextContinuationToken", seal(ctx.st, binding, sprefix, res.next_continuation_token))
    end
    if start_after then el(out, "StartAfter", start_after, isurl) end
  else
    el(out, "Marker", marker or "", isurl)
    el(out, "MaxKeys", max)
    el(out, "Delimiter", delimiter, isurl)
    el(out, "IsTruncated", truncated and "true" or "false")
    if truncated and res.next_marker then el(out, "NextMarker", strip(res.next_marker), isurl) end
  end
  if isurl then el(out, "EncodingType", "url") end
  out[#out + 1] = concat(items)
  out[#out + 1] = concat(prefixes)
  out[#out + 1] = "</ListBucketResult>"
  return send_xml(200, concat(out))
end

local GET_OPTS = { ["response-content-type"] = "response_content_type",
  ["response-content-disposition"] = "response_content_disposition",
  ["response-content-encoding"] = "response_content_encoding",
  ["response-content-language"] = "response_content_language",
  ["response-cache-control"] = "response_cache_control", ["response-expires"] = "response_expires" }

local function get_object(ctx, args)
  local opts = { log_prefix = "objstore.front: " }
  for q, o in pairs(GET_OPTS) do
    if args[q] ~= nil then
      opts[o] = arg(args, q)
      -- a CR/LF (or any control) would become a response header line on
      -- the store (radosgw answers garbage: a 500 here): refused
      if opts[o]:find("[%z\1-\31\127]") then
        return fail(ctx, s3err("InvalidArgument", 400, "The query parameter " .. q .. " holds a control character"))
      end
    end
  end
  opts.on_head = function(_, headers)
    for name, v in pairs(headers) do
      if sub(name, 1, 11) == "x-amz-meta-" then ngx.header[name] = v end
    end
    -- how many tags the object has (GetObjectTagging gives them)
    local tc = headers["x-amz-tagging-count"]
    if type(tc) == "string" and tc:find("^%d+$") then ngx.header["x-amz-tagging-count"] = tc end
  end
  -- cut short mid-body, the download counts what nginx sent ($body_bytes_sent)
  ctx.bytes_out = nil
  local res, err = onx.serve_object(ctx.st.client, ctx.store_bucket, ctx.store_key, opts)
  if not res then
    ctx.bytes_out = 0
    return store_fail(ctx, err)
  end
  -- the body is out (objstore.front.counters)
  ctx.bytes_out = ctx.method == "GET" and tonumber(ngx.header["Content-Length"]) or 0
  return ngx.exit(ngx.OK)
end

-- The object headers passed on by PutObject, CopyObject (REPLACE) and
-- CreateMultipartUpload; PUT_CONDITIONS by PutObject only (a copy's
-- conditions are on its source: x-amz-copy-source-if-*).
local PUT_HEADERS = { ["cache-control"] = "cache_control", ["content-disposition"] = "content_disposition",
  ["content-language"] = "content_language", expires = "expires" }
local PUT_CONDITIONS = { ["if-match"] = "if_match", ["if-none-match"] = "if_none_match" }

-- The x-amz-checksum-* headers sent: { { name, alg, want, state }, ... }.
local function checksums_of(headers)
  local sums = {}
  for name, alg in pairs(CHECKSUM_HEADERS) do
    local want = headers[name]
    if type(want) == "string" then
      sums[#sums + 1] = { name = name, alg = alg, want = want, state = checksum.new(alg) }
    end
  end
  return sums
end

-- The first checksum of `sums` the body did not match (BadDigest), or nil.
local function sums_mismatch(sums)
  for _, sum in ipairs(sums) do
    local got = sum.state:base64digest()
    if got ~= sum.want then
      return s3err("BadDigest", 400, "The " .. sum.alg:upper() .. " you specified did not match the calculated "
        .. "checksum.", { client_checksum = sum.want, computed_checksum = got })
    end
  end
end

-- The body, verified as it streams: a reader that holds back its last
-- piece until the whole body is checked, so a body that fails the check
-- never reaches the store whole (the store then sees a short body and
-- stores nothing). `sums`: the x-amz-checksum-* headers (checksums_of).
local function verified_reader(ctx, raw, auth, sums)
  local dec, checker
  if sub(auth.payload, 1, 10) == "STREAMING-" then
    local derr
    dec, derr = aws_chunked.new(auth)
    if not dec then return nil, derr end
  else
    checker = sigv4.payload_checker(auth)
  end
  local finished, failed, held = false, nil, nil
  local function produce()
    if finished then return false end
    local piece, err = raw()
    if err then return nil, s3err("IncompleteBody", 400, "You did not provide the number of bytes specified by "
      .. "the Content-Length HTTP header", { cause = err }) end
    if piece == nil then
      local ok, ferr
      if dec then ok, ferr = dec:finish() else ok, ferr = checker:finish() end
      if not ok then return nil, ferr end
      ferr = sums_mismatch(sums)
      if ferr then return nil, ferr end
      finished = true
      return false
    end
    local data = piece
    if dec then
      local derr
      data, derr = dec:feed(piece)
      if not data then return nil, derr end
    else
      checker:update(piece)
    end
    for _, sum in ipairs(sums) do sum.state:update(data) end
    ctx.bytes_in = (ctx.bytes_in or 0) + #data  -- payload bytes, for objstore.front.counters
    return data
  end
  return function()
    if failed then return nil, failed.code end
    if ctx.aborted then
      failed = s3err("RequestTimeout", 400, "the client went away")
      return nil, "the client is gone"
    end
    while true do
      local d, err = produce()
      if d == nil then
        failed = err
        return nil, tostring(err and err.code)
      end
      if d == false then
        local out = held
        held = nil
        return out
      end
      if d ~= "" then
        local out = held
        held = d
        if out then return out end
      end
    end
  end, function() return failed end, function()
    -- a body of length 0 for the store: read and check everything first
    while true do
      local d, err = produce()
      if d == nil then return nil, err end
      if d == false then return true end
      if d ~= "" then return nil, s3err("IncompleteBody", 400, "The body is longer than its declared length") end
    end
  end
end

-- A body nginx spooled (chunked transfer): read back 64 KiB at a time
-- from its temporary file (or memory, when it fit client_body_buffer_size).
local function spooled_reader()
  local body, size = onx.spooled_request_body()
  if not body then return nil, s3err("IncompleteBody", 400, "The request body could not be read") end
  if type(body) == "string" then
    local pos = 1
    return function()
      if pos > size then return nil end
      local piece = sub(body, pos, pos + 65535)
      pos = pos + #piece
      return piece
    end
  end
  local f = io.open(body.path, "rb")
  if not f then return nil, s3err("InternalError", 500, "We encountered an internal error. Please try again.") end
  return function()
    local piece = f:read(65536)
    if not piece then f:close() end
    return piece
  end
end

-- The request body as the store client takes it: (body, length, failure)
-- where body is a verified reader (or "" for an empty body, checked
-- already) and failure() the verification error that stopped the reader;
-- or nil, err.
local function request_body(ctx, auth, headers)
  local streaming = sub(auth.payload or "", 1, 10) == "STREAMING-"
  -- A chunked transfer is accepted for aws-chunked bodies (their decoded
  -- length is declared), spooled by nginx (client_max_body_size bounds it).
  local spool = ngx.var.http_transfer_encoding ~= nil
  if spool and not streaming or not spool and not tonumber(ngx.var.http_content_length) then
    return nil, s3err("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")
  end
  local length = tonumber(ngx.var.http_content_length)
  if streaming then
    length = tonumber(auth.decoded_content_length or headers["x-amz-decoded-content-length"])
    if not length then
      return nil, s3err("MissingContentLength", 411, "You must provide the x-amz-decoded-content-length header.")
    end
  end
  pcall(ngx.on_abort, function() ctx.aborted = true end)
  local raw, rerr
  if spool then
    raw, rerr = spooled_reader()
    if not raw then return nil, rerr end
  else
    raw, rerr = onx.request_body_reader(64 * 1024)
    if not raw then return nil, s3err("MissingContentLength", 411, tostring(rerr and rerr.message)) end
  end
  local reader, failure, drain = verified_reader(ctx, raw, auth, checksums_of(headers))
  if not reader then return nil, failure end
  if length == 0 then
    local ok, derr = drain()
    if not ok then return nil, derr end
    return "", 0, failure
  end
  return reader, length, failure
end

-- An upload to the store failed: the body's own failure (a bad hash, a
-- short body) before the store's error, which it caused.
local function upload_failed(ctx, failure, err)
  local f = failure()
  if ctx.aborted then return ngx.exit(499) end
  if f then return fail(ctx, f) end
  return store_fail(ctx, err)
end

-- The x-amz-meta-* headers as the client's opts.metadata (nil: none).
local function metadata_of(headers)
  local meta
  for name, v in pairs(headers) do
    if sub(name, 1, 11) == "x-amz-meta-" then
      local m = sub(name, 12)
      if not m:find("^[%w%-_%.]+$") or type(v) ~= "string" then
        return nil, s3err("InvalidArgument", 400, "Metadata names must be letters, digits, - _ and .")
      end
      meta = meta or {}
      meta[m] = v
    end
  end
  return meta
end

-- The object headers of PutObject, CopyObject and CreateMultipartUpload
-- as the client's options.
local function object_opts(headers)
  local opts = { content_type = headers["content-type"] }
  for h, o in pairs(PUT_HEADERS) do if type(headers[h]) == "string" then opts[o] = headers[h] end end
  local ce = headers["content-encoding"]
  if type(ce) == "string" then
    local kept = {}
    for e in ce:gmatch("[^,%s]+") do if e:lower() ~= "aws-chunked" then kept[#kept + 1] = e end end
    if #kept > 0 then opts.content_encoding = concat(kept, ",") end
  end
  local meta, merr = metadata_of(headers)
  if merr then return nil, merr end
  opts.metadata = meta
  return opts
end

-- The answer to a PUT of a body the store took: 200, its ETag, no body.
local function stored_ok(res)
  ngx.status = 200
  if res.etag then ngx.header["ETag"] = res.etag end
  ngx.header["Content-Length"] = 0
  return ngx.exit(200)
end

local function put_object(ctx, auth, headers)
  local opts, oerr = object_opts(headers)
  if not opts then return fail(ctx, oerr) end
  opts.content_type = opts.content_type or "binary/octet-stream"
  opts.content_md5 = headers["content-md5"] or false
  for h, o in pairs(PUT_CONDITIONS) do if type(headers[h]) == "string" then opts[o] = headers[h] end end
  local body, length, failure = request_body(ctx, auth, headers)
  if not body then return fail(ctx, length) end
  opts.length = length
  local res, err = ctx.st.client:put_object(ctx.store_bucket, ctx.store_key, body, opts)
  if not res then return upload_failed(ctx, failure, err) end
  return stored_ok(res)
end

local function delete_object(ctx)
  local res, err = ctx.st.client:delete_object(ctx.store_bucket, ctx.store_key)
  if not res then return store_fail(ctx, err) end
  ngx.status = 204
  return ngx.exit(204)
end

-- The Content-MD5 of a small body, checked here (the x-amz-checksum-*
-- ones are checked by small_body); `required`: one or the other must be
-- sent (DeleteObjects).
local function check_digest(headers, text, required)
  local md5 = headers["content-md5"]
  if md5 == nil then
    if not required then return nil end
    for name in pairs(CHECKSUM_HEADERS) do
      if headers[name] ~= nil then return nil end
    end
    return s3err("InvalidRequest", 400, "Missing required header for this request: Content-MD5")
  end
  if checksum.base64("md5", text) ~= md5 then
    return s3err("BadDigest", 400, STORE_MESSAGES.BadDigest)
  end
end

-- A small request body (an XML document) read whole, verified like an
-- upload's (payload hash, aws-chunked signatures, x-amz-checksum-*);
-- one declared longer than `max` bytes is refused before it is read.
local function small_body(ctx, auth, headers, max)
  local body, length, failure = request_body(ctx, auth, headers)
  if not body then return nil, length end
  if length > max then
    return nil, s3err("MaxMessageLengthExceeded", 400, "Your request was too big.")
  end
  if body == "" then return "" end
  local pieces = {}
  while true do
    local piece = body()
    if piece == nil then break end
    pieces[#pieces + 1] = piece
  end
  local f = failure()
  if f then return nil, f end
  return concat(pieces)
end

-- The client's XML document: its table (objstore.xml.parse) when its root
-- is `root`, else MalformedXML.
local function parse_request_xml(text, root, max)
  local ok, t, name = pcall(xml.parse, text, { max_size = max })
  if not ok or not t or name ~= root then
    return nil, s3err("MalformedXML", 400, STORE_MESSAGES.MalformedXML)
  end
  return t
end

-- An ETag as S3 writes it in a document: quoted (the client's results
-- may have lost the quotes).
local function quoted(etag)
  if type(etag) ~= "string" or sub(etag, 1, 1) == '"' then return etag end
  return '"' .. etag .. '"'
end

local function xml_doc(root, fields)
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n<', root, ' ', XMLNS, '>' }
  for _, f in ipairs(fields) do el(out, f[1], f[2]) end
  out[#out + 1] = "</" .. root .. ">"
  return concat(out)
end

-- The upload named by ?uploadId: its id as sent (the store checks it
-- against the store key, always derived from this tenant's mapping, so an
-- id of another tenant's upload names no upload here: NoSuchUpload).
local function upload_id_of(args)
  local id = arg(args, "uploadId")
  if type(id) ~= "string" or id == "" or #id > 1024 or id:find("[%z\1-\31\127]") then
    return nil, s3err("NoSuchUpload", 404, STORE_MESSAGES.NoSuchUpload)
  end
  return id
end

local function part_number_of(args)
  local n = tonumber(arg(args, "partNumber"))
  if not n or n < 1 or n > 10000 or n % 1 ~= 0 then
    return nil, s3err("InvalidArgument", 400, "Part number must be an integer between 1 and 10000, inclusive")
  end
  return n
end

-- A store error about an upload: radosgw answers ListParts of an upload
-- it does not know (of this key) with NoSuchKey, which is NoSuchUpload.
local function upload_fail(ctx, err)
  if err and err.status == 404 then return fail(ctx, s3err("NoSuchUpload", 404, STORE_MESSAGES.NoSuchUpload)) end
  return store_fail(ctx, err)
end

-- CreateMultipartUpload: an upload of the store key.
local function create_upload(ctx, headers)
  local opts, oerr = object_opts(headers)
  if not opts then return fail(ctx, oerr) end
  opts.content_type = opts.content_type or "binary/octet-stream"
  local res, err = ctx.st.client:create_multipart_upload(ctx.store_bucket, ctx.store_key, opts)
  if not res then return store_fail(ctx, err) end
  return send_xml(200, xml_doc("InitiateMultipartUploadResult",
    { { "Bucket", ctx.bucket }, { "Key", ctx.key }, { "UploadId", res.upload_id } }))
end

-- UploadPart: the body verified as it streams, like PutObject's.
local function upload_part(ctx, auth, headers, args)
  local id, ierr = upload_id_of(args)
  if not id then return fail(ctx, ierr) end
  local n, nerr = part_number_of(args)
  if not n then return fail(ctx, nerr) end
  local body, length, failure = request_body(ctx, auth, headers)
  if not body then return fail(ctx, length) end
  local res, err = ctx.st.client:upload_part(ctx.store_bucket, ctx.store_key, id, n, body,
    { length = length, content_md5 = headers["content-md5"] or false })
  if not res then return upload_failed(ctx, failure, err) end
  return stored_ok(res)
end

-- At most 10000 parts of a few hundred bytes each.
local MAX_COMPLETE_BODY = 4 * 1024 * 1024

-- The parts of a CompleteMultipartUpload document: { {part_number, etag} },
-- in strictly ascending order as S3 requires (the client would sort them).
-- Their Checksum* elements are dropped: the store knows none, each part's
-- was checked on its way in.
local function parts_of(doc)
  local parts = {}
  for i, p in ipairs(type(doc.part) == "table" and doc.part or {}) do
    local n = type(p) == "table" and tonumber(p.part_number)
    if not n or n < 1 or n > 10000 or n % 1 ~= 0 or type(p.etag) ~= "string" or p.etag == "" then
      return nil, s3err("MalformedXML", 400, STORE_MESSAGES.MalformedXML)
    end
    if i > 1 and n <= parts[i - 1].part_number then
      return nil, s3err("InvalidPartOrder", 400, STORE_MESSAGES.InvalidPartOrder)
    end
    parts[i] = { part_number = n, etag = p.etag }
  end
  if #parts == 0 then return nil, s3err("MalformedXML", 400, STORE_MESSAGES.MalformedXML) end
  return parts
end

-- A small XML request body (Complete, Delete): read up to `max` bytes,
-- its digest checked (required or not), parsed with `root` as its root;
-- the document or nil, err.
local function request_doc(ctx, auth, headers, max, root, digest_required)
  local text, berr = small_body(ctx, auth, headers, max)
  if not text then return nil, berr end
  local derr = check_digest(headers, text, digest_required)
  if derr then return nil, derr end
  return parse_request_xml(text, root, max)
end

-- CompleteMultipartUpload: the client's part list checked and sent again.
local function complete_upload(ctx, auth, headers, args)
  local id, ierr = upload_id_of(args)
  if not id then return fail(ctx, ierr) end
  local doc, derr = request_doc(ctx, auth, headers, MAX_COMPLETE_BODY, "CompleteMultipartUpload", false)
  if not doc then return fail(ctx, derr) end
  local parts, perr = parts_of(doc)
  if not parts then return fail(ctx, perr) end
  -- radosgw 16 answers the completion of an upload that is not this key's
  -- (another tenant's id) with a 500 "already in progress": asked first
  local known, kerr = ctx.st.client:list_parts(ctx.store_bucket, ctx.store_key, id, { max_parts = 1 })
  if not known and not (kerr and kerr.status == 404) then return upload_fail(ctx, kerr) end
  local res, err = ctx.st.client:complete_multipart_upload(ctx.store_bucket, ctx.store_key, id, parts)
  -- Not listed: an upload of this key completed already is completed
  -- again (S3 answers it 200, clients retry a Complete whose answer was
  -- lost); anything else is NoSuchUpload, never the store's 500.
  if not res and not known then return fail(ctx, s3err("NoSuchUpload", 404, STORE_MESSAGES.NoSuchUpload)) end
  if not res then return store_fail(ctx, err) end
  if not res.etag or res.etag == "" then
    -- radosgw 16 answers an empty ETag: the object's own, from a HEAD
    local head = ctx.st.client:head_object(ctx.store_bucket, ctx.store_key)
    res.etag = head and head.etag
  end
  return send_xml(200, xml_doc("CompleteMultipartUploadResult", { { "Location", ctx.resource },
    { "Bucket", ctx.bucket }, { "Key", ctx.key }, { "ETag", quoted(res.etag) } }))
end

local function abort_upload(ctx, args)
  local id, ierr = upload_id_of(args)
  if not id then return fail(ctx, ierr) end
  local res, err = ctx.st.client:abort_multipart_upload(ctx.store_bucket, ctx.store_key, id)
  if not res then return upload_fail(ctx, err) end
  ngx.status = 204
  return ngx.exit(204)
end

-- A non-negative integer query parameter, at most `cap` (nil: absent).

local function owner_xml(out, name)
  for _, who in ipairs({ "Initiator", "Owner" }) do
    out[#out + 1] = "<" .. who .. "><ID>" .. escape(name) .. "</ID><DisplayName>" .. escape(name)
      .. "</DisplayName></" .. who .. ">"
  end
end

-- ListParts: one page (max-parts, at most 1000) of the upload's parts.
local function list_parts(ctx, args)
  local id, ierr = upload_id_of(args)
  if not id then return fail(ctx, ierr) end
  local max, merr = count_arg(args, "max-parts", 1000)
  if merr then return fail(ctx, merr) end
  local marker, kerr = count_arg(args, "part-number-marker", 10000)
  if kerr then return fail(ctx, kerr) end
  local res, err = ctx.st.client:list_parts(ctx.store_bucket, ctx.store_key, id,
    { max_parts = max or 1000, part_number_marker = marker })
  if not res then return upload_fail(ctx, err) end
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult ', XMLNS, '>' }
  el(out, "Bucket", ctx.bucket)
  el(out, "Key", ctx.key)
  el(out, "UploadId", id)
  owner_xml(out, ctx.tenant.name)
  el(out, "StorageClass", "STANDARD")
  el(out, "PartNumberMarker", marker or 0)
  el(out, "NextPartNumberMarker", tonumber(res.next_part_number_marker) or 0)
  el(out, "MaxParts", max or 1000)
  el(out, "IsTruncated", res.is_truncated == true and "true" or "false")
  for _, p in ipairs(res.parts or {}) do
    out[#out + 1] = "<Part><PartNumber>" .. tostring(tonumber(p.part_number) or 0) .. "</PartNumber><LastModified>"
      .. escape(p.last_modified or "") .. "</LastModified><ETag>" .. escape(p.etag or "") .. "</ETag><Size>"
      .. tostring(tonumber(p.size) or 0) .. "</Size></Part>"
  end
  out[#out + 1] = "</ListPartsResult>"
  return send_xml(200, concat(out))
end

-- ListMultipartUploads: the uploads under the mapping's prefix, keys
-- (and markers, common prefixes) un-prefixed.
local function list_uploads(ctx, args)
  local max, merr = count_arg(args, "max-uploads", 1000)
  if merr then return fail(ctx, merr) end
  local enc = arg(args, "encoding-type")
  if enc ~= nil and enc ~= "url" then
    return fail(ctx, s3err("InvalidArgument", 400, "Invalid Encoding Method specified in Request"))
  end
  local sprefix = ctx.store_prefix
  local prefix, delimiter = arg(args, "prefix") or "", arg(args, "delimiter")
  local key_marker, id_marker = arg(args, "key-marker"), arg(args, "upload-id-marker")
  for _, v in ipairs({ prefix, delimiter or "", key_marker or "", id_marker or "" }) do
    if v:find("[%z\1-\31\127]") then
      return fail(ctx, s3err("InvalidArgument", 400, "A prefix, delimiter or marker must not hold a control "
        .. "character"))
    end
  end
  if delimiter == "" then delimiter = nil end
  local res, err = ctx.st.client:list_multipart_uploads(ctx.store_bucket, { prefix = sprefix .. prefix,
    delimiter = delimiter, key_marker = key_marker and key_marker ~= "" and sprefix .. key_marker or nil,
    upload_id_marker = key_marker and id_marker or nil, max_uploads = max or 1000 })
  if not res then return store_fail(ctx, err) end
  local function strip(k)
    if type(k) == "string" and sub(k, 1, #sprefix) == sprefix then return sub(k, #sprefix + 1) end
    return nil
  end
  local isurl = enc == "url"
  local truncated = res.is_truncated == true
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult ', XMLNS, '>' }
  el(out, "Bucket", ctx.bucket)
  el(out, "KeyMarker", key_marker or "", isurl)
  el(out, "UploadIdMarker", id_marker or "")
  if truncated then
    el(out, "NextKeyMarker", strip(res.next_key_marker) or "", isurl)
    el(out, "NextUploadIdMarker", res.next_upload_id_marker or "")
  end
  el(out, "Prefix", prefix, isurl)
  el(out, "Delimiter", delimiter, isurl)
  el(out, "MaxUploads", max or 1000)
  el(out, "IsTruncated", truncated and "true" or "false")
  if isurl then el(out, "EncodingType", "url") end
  for _, u in ipairs(res.uploads) do
    local k = strip(u.key)
    if k then
      out[#out + 1] = "<Upload><Key>" .. escape(isurl and url_encode(k) or k) .. "</Key><UploadId>"
        .. escape(u.upload_id or "") .. "</UploadId>"
      owner_xml(out, ctx.tenant.name)
      out[#out + 1] = "<StorageClass>STANDARD</StorageClass><Initiated>" .. escape(u.initiated or "")
        .. "</Initiated></Upload>"
    end
  end
  for _, p in ipairs(res.common_prefixes) do
    local k = strip(p.prefix)
    if k then
      out[#out + 1] = "<CommonPrefixes><Prefix>" .. escape(isurl and url_encode(k) or k) .. "</Prefix></CommonPrefixes>"
    end
  end
  out[#out + 1] = "</ListMultipartUploadsResult>"
  return send_xml(200, concat(out))
end

-- The source of a copy: x-amz-copy-source ("bucket/key", maybe with a
-- leading '/') percent-decoded ONCE, then mapped through this tenant's own
-- mappings with `read` (so "..", "%2e%2e" and other tenants' buckets are
-- refused as for any key). A versionId is not supported.
local function copy_source_of(ctx, headers)
  local raw = headers["x-amz-copy-source"]
  if type(raw) ~= "string" or raw == "" then
    return nil, s3err("InvalidArgument", 400, "Copy Source must mention the source bucket and key: "
      .. "sourcebucket/sourcekey")
  end
  if raw:find("?", 1, true) then return nil, not_implemented("a copy source with a versionId") end
  local decoded = unescape_path(raw)
  local bucket, key = decoded:match("^/?([^/]+)/(.+)$")
  if not bucket then
    return nil, s3err("InvalidArgument", 400, "Copy Source must mention the source bucket and key: "
      .. "sourcebucket/sourcekey")
  end
  local created
  if tenants.space_mapping(ctx.tenant, bucket) then
    local exists, eerr = space_bucket_exists(ctx, bucket)
    if exists == nil then return nil, eerr end
    created = exists
  end
  local sb, skey = ctx.st.reg:map(ctx.tenant, bucket, key, "read", created)
  if not sb then return nil, skey end
  return sb, skey, key
end

local function copy_conditions(headers, opts)
  opts.copy_source_if_match = headers["x-amz-copy-source-if-match"]
  opts.copy_source_if_none_match = headers["x-amz-copy-source-if-none-match"]
  return opts
end

-- CopyObject: source and destination both through this tenant's mappings.
local function copy_object(ctx, headers)
  local sb, skey = copy_source_of(ctx, headers)
  if not sb then return fail(ctx, skey) end
  local opts, oerr = object_opts(headers)
  if not opts then return fail(ctx, oerr) end
  local directive = headers["x-amz-metadata-directive"]
  if directive ~= nil and directive ~= "COPY" and directive ~= "REPLACE" then
    return fail(ctx, s3err("InvalidArgument", 400, "Unknown metadata directive."))
  end
  opts.metadata_directive = directive or "COPY"
  if opts.metadata_directive == "COPY" then
    -- the source's metadata is kept: the new headers would be ignored by S3
    opts.metadata, opts.content_type = nil, nil
  end
  local res, err = ctx.st.client:copy_object(ctx.store_bucket, ctx.store_key, { bucket = sb, key = skey },
    copy_conditions(headers, opts))
  if not res then return store_fail(ctx, err) end
  return send_xml(200, xml_doc("CopyObjectResult", { { "LastModified", res.last_modified },
    { "ETag", quoted(res.etag) } }))
end

-- x-amz-copy-source-range: "bytes=first-last" -> { first, last }.
local function copy_range_of(headers)
  local r = headers["x-amz-copy-source-range"]
  if r == nil then return nil end
  local a, b = tostring(r):match("^bytes=(%d+)%-(%d+)$")
  a, b = tonumber(a), tonumber(b)
  if not a or b < a then
    return nil, s3err("InvalidArgument", 400, "The x-amz-copy-source-range value must be of the form "
      .. "bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
  end
  return { a, b }
end

-- UploadPartCopy. radosgw 16.2 aborts on a copy source holding "%25" (a
-- '%' in the key, which the client must encode so): a source key with a
-- '%' is refused here and never reaches it.
local function upload_part_copy(ctx, headers, args)
  local id, ierr = upload_id_of(args)
  if not id then return fail(ctx, ierr) end
  local n, nerr = part_number_of(args)
  if not n then return fail(ctx, nerr) end
  local sb, skey, key = copy_source_of(ctx, headers)
  if not sb then return fail(ctx, skey) end
  if key:find("%", 1, true) then
    return fail(ctx, s3err("InvalidArgument", 400, "A copy source key holding '%' is not accepted by "
      .. "UploadPartCopy here; copy it with CopyObject first"))
  end
  local range, rerr = copy_range_of(headers)
  if rerr then return fail(ctx, rerr) end
  local res, err = ctx.st.client:upload_part_copy(ctx.store_bucket, ctx.store_key, id, n,
    { bucket = sb, key = skey }, { range = range, copy_source_if_match = headers["x-amz-copy-source-if-match"] })
  if not res then return store_fail(ctx, err) end
  return send_xml(200, xml_doc("CopyPartResult", { { "LastModified", res.last_modified },
    { "ETag", quoted(res.etag) } }))
end

-- S3's limit of a DeleteObjects request, and room for its XML: 1000 keys
-- of up to 1024 bytes each, escaped.
local MAX_DELETE_KEYS = 1000
local MAX_DELETE_BODY = MAX_DELETE_KEYS * 4 * 1024


-- The keys of a Delete document mapped into the prefix: ({ store keys },
-- { store key -> tenant key }, { errors of keys refused here }, quiet).
local function delete_keys(ctx, doc)
  local objects = type(doc.object) == "table" and doc.object or {}
  if #objects == 0 or #objects > MAX_DELETE_KEYS then
    return nil, s3err("MalformedXML", 400, STORE_MESSAGES.MalformedXML)
  end
  local skeys, names, refused = {}, {}, {}
  for _, o in ipairs(objects) do
    if type(o) ~= "table" or type(o.key) ~= "string" then
      return nil, s3err("MalformedXML", 400, STORE_MESSAGES.MalformedXML)
    end
    -- the one version of an object in an unversioned store bucket
    if o.version_id ~= nil and not (o.version_id == "null" and ctx.unversioned) then
      return nil, not_implemented("deleting a version")
    end
    local _, skey = ctx.st.reg:map(ctx.tenant, ctx.bucket, o.key, "delete", ctx.created)
    if type(skey) == "string" then
      if not names[skey] then skeys[#skeys + 1] = skey end
      names[skey] = o.key
    else
      refused[#refused + 1] = { key = o.key, code = skey.code, message = skey.message }
    end
  end
  return skeys, names, refused, doc.quiet == true
end

local function deleted_xml(out, key)
  out[#out + 1] = "<Deleted><Key>" .. escape(key) .. "</Key></Deleted>"
end

local function delete_error_xml(out, key, code, message)
  out[#out + 1] = "<Error><Key>" .. escape(key) .. "</Key><Code>" .. escape(code or "InternalError")
    .. "</Code><Message>" .. escape(message or "") .. "</Message></Error>"
end

-- DeleteObjects: the body checked (digest, size, at most 1000 keys), its
-- keys mapped into the prefix, the results un-prefixed; Quiet lists only
-- the failures.
local function delete_objects(ctx, auth, headers)
  local doc, derr = request_doc(ctx, auth, headers, MAX_DELETE_BODY, "Delete", true)
  if not doc then return fail(ctx, derr) end
  for _, o in ipairs(type(doc.object) == "table" and doc.object or {}) do
    if type(o) == "table" and o.version_id == "null" then
      local unv, uerr = store_unversioned(ctx)
      if unv == nil then return store_fail(ctx, uerr) end
      ctx.unversioned = unv
      break
    end
  end
  local skeys, names, refused, quiet = delete_keys(ctx, doc)
  if not skeys then return fail(ctx, names) end
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult ', XMLNS, '>' }
  if #skeys > 0 then
    local res, err = ctx.st.client:delete_objects(ctx.store_bucket, skeys, { quiet = quiet })
    -- Partial failure: every key is in err.result's deleted or errors, and
    -- S3 answers such a request 200 with an <Error> per key.
    res = res or err.result
    if not res then return store_fail(ctx, err) end
    for _, d in ipairs(res.deleted) do
      if not quiet and names[d.key] then deleted_xml(out, names[d.key]) end
    end
    for _, e in ipairs(res.errors) do
      -- The store's message may name its bucket or key, and a batch that
      -- failed whole carries objstore's own codes (a Timeout): only S3's
      -- codes pass, with S3's message; any other is an InternalError.
      if names[e.key] then
        local code = s3_error.STATUS[e.code] and e.code or "InternalError"
        delete_error_xml(out, names[e.key], code, STORE_MESSAGES[code])
      end
    end
  end
  for _, r in ipairs(refused) do delete_error_xml(out, r.key, r.code, r.message) end
  out[#out + 1] = "</DeleteResult>"
  return send_xml(200, concat(out))
end

local function head_bucket(ctx)
  ngx.status = 200
  ngx.header["x-amz-bucket-region"] = ctx.st.region
  return ngx.exit(200)
end

-- The multipart operations on a key, by method, when ?uploadId is given.
local UPLOAD_OPS = { PUT = { "UploadPart", Q_PART }, POST = { "CompleteMultipartUpload", Q_UPLOAD },
  DELETE = { "AbortMultipartUpload", Q_UPLOAD }, GET = { "ListParts", Q_LIST_PARTS } }

-- What a request on a key is, as route tells.
local function route_key(method, args, headers)
  if args.uploads ~= nil then
    if method == "POST" then return "CreateMultipartUpload", "multipart", Q_UPLOADS end
    return nil, method .. " Object ?uploads"
  end
  if args.uploadId ~= nil then
    local op = UPLOAD_OPS[method]
    if not op then return nil, method .. " Object ?uploadId" end
    if op[1] == "UploadPart" and headers["x-amz-copy-source"] ~= nil then
      return "UploadPartCopy", "multipart", Q_PART
    end
    return op[1], "multipart", op[2]
  end
  if args.partNumber ~= nil then return nil, "a part number without an upload (?partNumber)" end
  if args.tagging ~= nil and args.versionId == nil then
    -- the tags are the object's metadata: changing them is a write
    if method == "GET" then return "GetObjectTagging", "read", Q_TAGGING end
    if method == "PUT" then return "PutObjectTagging", "write", Q_TAGGING end
    if method == "DELETE" then return "DeleteObjectTagging", "write", Q_TAGGING end
  end
  for _, sub_resource in ipairs({ "acl", "tagging", "retention", "legal-hold", "torrent", "restore", "select",
    "attributes", "versionId" }) do
    if args[sub_resource] ~= nil then return nil, method .. " Object ?" .. sub_resource end
  end
  if method == "GET" then return "GetObject", "read", Q_GET end
  if method == "HEAD" then return "HeadObject", "read", Q_NONE end
  if method == "PUT" and headers["x-amz-copy-source"] ~= nil then return "CopyObject", "write", Q_NONE end
  if method == "PUT" then return "PutObject", "write", Q_NONE end
  if method == "DELETE" then return "DeleteObject", "delete", Q_NONE end
  return nil, method .. " Object"
end

-- Permissions an operation needs on its mapping besides route's: writing
-- an object by parts needs `write` as well as `multipart`.
local ALSO_NEEDS = { CreateMultipartUpload = "write", UploadPart = "write", UploadPartCopy = "write",
  CompleteMultipartUpload = "write" }

-- What a request is: (operation name, needed permission, allowed query).
local function route(method, key, args, headers)
  if key == nil then
    if method == "GET" and args.uploads ~= nil then return "ListMultipartUploads", "multipart", Q_LIST_UPLOADS end
    if method == "GET" and args.versions ~= nil then return "ListObjectVersions", "list", Q_VERSIONS end
    if method == "POST" and args.delete ~= nil then return "DeleteObjects", "delete", Q_DELETE end
    if method == "GET" then
      for _, sub_resource in ipairs({ "acl", "location", "versioning", "policy", "tagging", "cors",
        "lifecycle", "versions", "website", "logging", "notification", "replication", "encryption",
        "object-lock", "ownershipControls", "publicAccessBlock", "accelerate", "requestPayment",
        "analytics", "inventory", "metrics", "intelligent-tiering" }) do
        if args[sub_resource] ~= nil then return nil, "GET Bucket ?" .. sub_resource end
      end
      return "ListObjects", "list", Q_LIST
    end
    if method == "HEAD" then return "HeadBucket", "list", Q_NONE end
    -- a bucket of the tenant's bucket space (tenants: "create")
    if method == "PUT" and next(args) == nil then return "CreateBucket", "create", Q_NONE end
    if method == "DELETE" and next(args) == nil then return "DeleteBucket", "create", Q_NONE end
    return nil, method .. " on a bucket (" .. (method == "PUT" and "CreateBucket or a bucket configuration"
      or method == "DELETE" and "DeleteBucket" or method == "POST" and "a POST without ?delete" or "?") .. ")"
  end
  return route_key(method, args, headers)
end

-- The handler of each operation routed to, after its checks.
-- Object tagging: the tag set passed to and from the store as S3 writes
-- it; the store checks the tags' lengths and characters (InvalidTag).
local MAX_TAGGING_BODY = 64 * 1024
local MAX_TAGS = 10

local function get_tagging(ctx)
  local res, err = ctx.st.client:get_object_tagging(ctx.store_bucket, ctx.store_key)
  if not res then return store_fail(ctx, err) end
  local keys = {}
  for k in pairs(res.tags) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n<Tagging ', XMLNS, '><TagSet>' }
  for _, k in ipairs(keys) do
    out[#out + 1] = "<Tag><Key>" .. escape(k) .. "</Key><Value>" .. escape(res.tags[k]) .. "</Value></Tag>"
  end
  out[#out + 1] = "</TagSet></Tagging>"
  return send_xml(200, concat(out))
end

local function put_tagging(ctx, auth, headers)
  local doc, derr = request_doc(ctx, auth, headers, MAX_TAGGING_BODY, "Tagging", false)
  if not doc then return fail(ctx, derr) end
  local set = type(doc.tag_set) == "table" and doc.tag_set.tag or nil
  if type(set) ~= "table" then return fail(ctx, s3err("MalformedXML", 400, STORE_MESSAGES.MalformedXML)) end
  local tags, n = {}, 0
  for _, t in ipairs(set) do
    local v = type(t) == "table" and (t.value == nil and "" or t.value) or nil
    if type(t) ~= "table" or type(t.key) ~= "string" or t.key == "" or type(v) ~= "string" then
      return fail(ctx, s3err("MalformedXML", 400, STORE_MESSAGES.MalformedXML))
    end
    if tags[t.key] ~= nil then
      return fail(ctx, s3err("InvalidTag", 400, "Cannot provide multiple Tags with the same key"))
    end
    tags[t.key], n = v, n + 1
  end
  if n > MAX_TAGS then
    return fail(ctx, s3err("InvalidTag", 400, "Object tags cannot be greater than " .. MAX_TAGS))
  end
  local res, err = ctx.st.client:put_object_tagging(ctx.store_bucket, ctx.store_key, tags)
  if not res then return store_fail(ctx, err) end
  ngx.status = 200
  return ngx.exit(200)
end

local function delete_tagging(ctx)
  local res, err = ctx.st.client:delete_object_tagging(ctx.store_bucket, ctx.store_key)
  if not res then return store_fail(ctx, err) end
  ngx.status = 204
  return ngx.exit(204)
end

-- Buckets created by a tenant (objstore.front.tenants, bucket_space): an
-- empty marker object says a bucket exists; its objects live under
-- `space prefix .. name .. "/"`.
function space_bucket_exists(ctx, bucket)
  local mb, mk = tenants.space_marker(ctx.tenant, bucket)
  local ok, err = ctx.st.client:object_exists(mb, mk)
  if ok == nil then return nil, err end
  return ok
end

local MAX_CREATE_BODY = 64 * 1024

function bucket_space_op(ctx, op, headers, auth)
  local tenant, bucket = ctx.tenant, ctx.bucket
  local sp = tenant.space
  if not sp then
    return fail(ctx, not_implemented(op == "CreateBucket" and "CreateBucket without a bucket space"
      or "DeleteBucket of a bucket the tenant did not create"))
  end
  if tenant.buckets[bucket] then
    if op == "CreateBucket" and ctx.st.region == "us-east-1" then -- as below: the owner's re-creation
      ngx.status = 200
      return ngx.exit(200)
    end
    if op == "CreateBucket" then
      return fail(ctx, s3err("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket "
        .. "succeeded and you already own it.", { bucket_name = bucket }))
    end
    return fail(ctx, not_implemented("DeleteBucket of a bucket of the tenants file"))
  end
  -- S3's rules for a new bucket: also no IP address, no "-." or ".-"
  local problem = tenants.bucket_problem(bucket) or bucket:find("^%d+%.%d+%.%d+%.%d+$") or bucket:find("-.", 1, true)
    or bucket:find(".-", 1, true)
  if problem then
    return fail(ctx, s3err("InvalidBucketName", 400, "The specified bucket is not valid.", { bucket_name = bucket }))
  end
  if not sp.allow.create then return fail(ctx, s3err("AccessDenied", 403, "Access Denied")) end
  local mb, mk = tenants.space_marker(tenant, bucket)
  local exists, eerr = space_bucket_exists(ctx, bucket)
  if exists == nil then return store_fail(ctx, eerr) end
  ctx.store_bucket, ctx.store_prefix = mb, sp.prefix .. bucket .. "/"
  if op == "CreateBucket" then
    -- a CreateBucketConfiguration (a LocationConstraint) is read and not
    -- kept: the bucket is where the space is
    local body, berr = small_body(ctx, auth, headers, MAX_CREATE_BODY)
    if not body then return fail(ctx, berr) end
    if body:find("%S") and not parse_request_xml(body, "CreateBucketConfiguration", MAX_CREATE_BODY) then
      return fail(ctx, s3err("MalformedXML", 400, STORE_MESSAGES.MalformedXML))
    end
    if exists then
      -- S3 in us-east-1 answers the owner's re-creation 200 and changes
      -- nothing (legacy); every other region BucketAlreadyOwnedByYou
      if ctx.st.region == "us-east-1" then
        ngx.header["Location"] = "/" .. bucket
        ngx.status = 200
        return ngx.exit(200)
      end
      return fail(ctx, s3err("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket "
        .. "succeeded and you already own it.", { bucket_name = bucket }))
    end
    local _, space = tenants.space_marker(tenant, "")
    local page, perr = ctx.st.client:list_objects(mb, { prefix = space, max_keys = MAX_CREATED_BUCKETS })
    if not page then return store_fail(ctx, perr) end
    if #(page.contents or {}) >= MAX_CREATED_BUCKETS then
      return fail(ctx, s3err("TooManyBuckets", 400, "You have attempted to create more buckets than allowed"))
    end
    local res, err = ctx.st.client:put_object(mb, mk, "", { content_type = "application/octet-stream" })
    if not res then return store_fail(ctx, err) end
    ngx.header["Location"] = "/" .. bucket
    ngx.status = 200
    return ngx.exit(200)
  end
  if not exists then
    return fail(ctx, s3err("NoSuchBucket", 404, "The specified bucket does not exist", { bucket_name = bucket }))
  end
  -- DeleteBucket: only an empty one, as S3
  local page, lerr = ctx.st.client:list_objects(mb, { prefix = ctx.store_prefix, max_keys = 1 })
  if not page then return store_fail(ctx, lerr) end
  if #(page.contents or {}) > 0 or page.is_truncated == true then
    return fail(ctx, s3err("BucketNotEmpty", 409, "The bucket you tried to delete is not empty",
      { bucket_name = bucket }))
  end
  local res, err = ctx.st.client:delete_object(mb, mk)
  if not res then return store_fail(ctx, err) end
  ngx.status = 204
  return ngx.exit(204)
end

-- Whether the store bucket never had versioning: then every object's one
-- version is "null", as S3 lists it. Asked again after a minute, so that
-- versioning turned on at the store is seen without a restart (a version
-- "null" delete would otherwise be taken for a plain one).
local UNVERSIONED_TTL = 60
local unversioned_cache = {} -- store bucket -> { unversioned, until }
function store_unversioned(ctx)
  local sb = ctx.store_bucket
  local c = unversioned_cache[sb]
  if not c or c[2] <= ngx.now() then
    local v, err = ctx.st.client:get_bucket_versioning(sb)
    if not v then return nil, err end
    c = { v.status == nil or v.status == "", ngx.now() + UNVERSIONED_TTL }
    unversioned_cache[sb] = c
  end
  return c[1]
end

-- ListObjectVersions of an unversioned store bucket: each object is its
-- own one version, "null", the latest (what S3 answers for a bucket that
-- never had versioning). A versioned store bucket: NotImplemented.
local function list_versions(ctx, args)
  local unv, uerr = store_unversioned(ctx)
  if unv == nil then return store_fail(ctx, uerr) end
  if not unv then return fail(ctx, not_implemented("versions of a versioned store bucket")) end
  local enc = arg(args, "encoding-type")
  if enc ~= nil and enc ~= "url" then
    return fail(ctx, s3err("InvalidArgument", 400, "Invalid Encoding Method specified in Request"))
  end
  local max, merr = count_arg(args, "max-keys", 1000)
  if merr then return fail(ctx, merr) end
  max = max or 1000
  local sprefix = ctx.store_prefix
  local prefix = arg(args, "prefix") or ""
  local delimiter = arg(args, "delimiter")
  if delimiter == "" then delimiter = nil end
  local key_marker, vmarker = arg(args, "key-marker"), arg(args, "version-id-marker")
  if vmarker ~= nil and vmarker ~= "" and vmarker ~= "null" then
    return fail(ctx, s3err("InvalidArgument", 400, "Invalid version id specified"))
  end
  for _, v in ipairs({ prefix, delimiter or "", key_marker or "" }) do
    if v:find("%z") then
      return fail(ctx, s3err("InvalidArgument", 400, "A prefix, delimiter or key-marker must not contain a NUL "
        .. "character"))
    end
  end
  local res, err
  if max == 0 then
    res = { contents = {}, common_prefixes = {}, is_truncated = false }
  else
    res, err = ctx.st.client:list_objects_v1(ctx.store_bucket, { prefix = sprefix .. prefix, delimiter = delimiter,
      max_keys = max, marker = key_marker and key_marker ~= "" and sprefix .. key_marker or nil })
  end
  if not res then return store_fail(ctx, err) end
  local isurl = enc == "url"
  local function text(k) return escape(isurl and url_encode(k) or k) end
  local owner = "<Owner><ID>" .. escape(ctx.tenant.name) .. "</ID><DisplayName>" .. escape(ctx.tenant.name)
    .. "</DisplayName></Owner>"
  local items, prefixes, last = {}, {}, nil
  for _, o in ipairs(res.contents or {}) do
    if type(o.key) == "string" and sub(o.key, 1, #sprefix) == sprefix then
      local k = sub(o.key, #sprefix + 1)
      last = k
      items[#items + 1] = "<Version><Key>" .. text(k) .. "</Key><VersionId>null</VersionId><IsLatest>true"
        .. "</IsLatest><LastModified>" .. escape(o.last_modified or "") .. "</LastModified><ETag>"
        .. escape(o.etag or "") .. "</ETag><Size>" .. tostring(tonumber(o.size) or 0) .. "</Size>" .. owner
        .. "<StorageClass>" .. escape(o.storage_class or "STANDARD") .. "</StorageClass></Version>"
    end
  end
  for _, p in ipairs(res.common_prefixes or {}) do
    if type(p.prefix) == "string" and sub(p.prefix, 1, #sprefix) == sprefix then
      local k = sub(p.prefix, #sprefix + 1)
      if last == nil or k > last then last = k end
      prefixes[#prefixes + 1] = "<CommonPrefixes><Prefix>" .. text(k) .. "</Prefix></CommonPrefixes>"
    end
  end
  local truncated = res.is_truncated == true
  local out = { '<?xml version="1.0" encoding="UTF-8"?>\n<ListVersionsResult ', XMLNS, '>' }
  el(out, "Name", ctx.bucket)
  el(out, "Prefix", prefix, isurl)
  out[#out + 1] = "<KeyMarker>" .. text(key_marker or "") .. "</KeyMarker><VersionIdMarker>"
    .. escape(vmarker or "") .. "</VersionIdMarker>"
  el(out, "MaxKeys", max)
  el(out, "Delimiter", delimiter, isurl)
  el(out, "IsTruncated", truncated and "true" or "false")
  if truncated and last then
    out[#out + 1] = "<NextKeyMarker>" .. text(last) .. "</NextKeyMarker><NextVersionIdMarker>null"
      .. "</NextVersionIdMarker>"
  end
  if isurl then el(out, "EncodingType", "url") end
  out[#out + 1] = concat(items)
  out[#out + 1] = concat(prefixes)
  out[#out + 1] = "</ListVersionsResult>"
  return send_xml(200, concat(out))
end

local HANDLERS = {
  ListObjectVersions = function(ctx, args) return list_versions(ctx, args) end,
  GetObjectTagging = function(ctx) return get_tagging(ctx) end,
  PutObjectTagging = function(ctx, _, headers, auth) return put_tagging(ctx, auth, headers) end,
  DeleteObjectTagging = function(ctx) return delete_tagging(ctx) end,
  ListObjects = function(ctx, args) return list_objects(ctx, args) end,
  HeadBucket = function(ctx) return head_bucket(ctx) end,
  GetObject = function(ctx, args) return get_object(ctx, args) end,
  HeadObject = function(ctx, args) return get_object(ctx, args) end,
  PutObject = function(ctx, _, headers, auth) return put_object(ctx, auth, headers) end,
  DeleteObject = function(ctx) return delete_object(ctx) end,
  CopyObject = function(ctx, _, headers) return copy_object(ctx, headers) end,
  DeleteObjects = function(ctx, _, headers, auth) return delete_objects(ctx, auth, headers) end,
  ListMultipartUploads = function(ctx, args) return list_uploads(ctx, args) end,
  CreateMultipartUpload = function(ctx, _, headers) return create_upload(ctx, headers) end,
  UploadPart = function(ctx, args, headers, auth) return upload_part(ctx, auth, headers, args) end,
  UploadPartCopy = function(ctx, args, headers) return upload_part_copy(ctx, headers, args) end,
  CompleteMultipartUpload = function(ctx, args, headers, auth)
    return complete_upload(ctx, auth, headers, args)
  end,
  AbortMultipartUpload = function(ctx, args) return abort_upload(ctx, args) end,
  ListParts = function(ctx, args) return list_parts(ctx, args) end,
}

local function serve(config, ctx)
  local st, serr = get_state(ngx, config)
  if not st then
    ngx.log(ngx.ERR, "objstore.front: cannot load the tenants: ", tostring(serr))
    return fail(ctx, s3err("ServiceUnavailable", 503, "The server is not configured"))
  end
  ctx.st = st
  local method = ngx.req.get_method()
  ctx.method = method
  local headers, truncated = ngx.req.get_headers(MAX_HEADERS)
  if truncated then
    return fail(ctx, s3err("RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum "
      .. "allowed: at most " .. MAX_HEADERS .. " headers"))
  end
  local uri = ngx.var.request_uri
  local path, query = uri:match("^([^?]*)%??(.*)$")
  ctx.resource = path
  -- Authentication first: nothing is said to a stranger.
  local tenant
  local auth, aerr = sigv4.verify({ method = method, path = path, query = query, headers = headers, now = ngx.time() },
    function(access_key)
      local t, secret = st.reg:lookup(access_key)
      tenant = t
      return secret
    end, { region = st.region, anonymous = false })
  if not auth then return fail(ctx, aerr) end
  if auth.session_token then
    return fail(ctx, s3err("InvalidToken", 400, "Session tokens are not accepted by this server"))
  end
  ctx.tenant = tenant
  -- A tenant over its limit is stopped here, before anything reaches the
  -- store (and before its request is even routed).
  if tenant.limits then
    if not st.limits then
      ngx.log(ngx.ERR, "objstore.front: tenant limits need config.limits_dict (a lua_shared_dict)")
      return fail(ctx, s3err("InternalError", 500, "We encountered an internal error. Please try again."))
    end
    local ok, retry_after = limits.admit(st.limits, tenant.name, tenant.limits, ngx.time())
    if not ok then
      ngx.header["Retry-After"] = retry_after
      return fail(ctx, s3err("SlowDown", 503, "Please reduce your request rate."))
    end
    -- its bytes are counted in the log phase (objstore.front.counters.log)
    if tenant.limits.bytes then ctx.byte_limit = { dict = st.limits, name = tenant.name, limits = tenant.limits } end
  end
  -- Addressing: virtual-host (bucket.<domain>) or path-style (/bucket/key).
  local host = type(headers.host) == "string" and headers.host:lower():gsub(":%d+$", "") or ""
  local bucket, rawkey
  if st.domain and #host > #st.domain and sub(host, -#st.domain) == st.domain then
    bucket = sub(host, 1, #host - #st.domain)
    rawkey = path:match("^/(.*)$")
  else
    local b, rest = path:match("^/([^/]*)/?(.*)$")
    if b and b ~= "" then bucket, rawkey = unescape_path(b), rest end
  end
  local args, atrunc = ngx.req.get_uri_args(MAX_HEADERS)
  if atrunc then return fail(ctx, s3err("InvalidArgument", 400, "Too many query parameters")) end
  if not bucket then
    if method ~= "GET" then return fail(ctx, not_implemented(method .. " /")) end
    local bad = check_query(args, Q_NONE) or check_headers(headers, false)
    if bad then return fail(ctx, bad) end
    ctx.op = "ListBuckets"
    return list_buckets(ctx)
  end
  ctx.bucket = bucket
  local key = rawkey and rawkey ~= "" and unescape_path(rawkey) or nil
  local op, perm_or_why, allowed = route(method, key, args, headers)
  if not op then return fail(ctx, not_implemented(perm_or_why)) end
  ctx.op = op
  local bad = check_query(args, allowed) or check_headers(headers, op)
  if bad then return fail(ctx, bad) end
  if op == "CreateBucket" or op == "DeleteBucket" then return bucket_space_op(ctx, op, headers, auth) end
  -- A bucket the tenant created (its bucket space): one HEAD of its marker
  -- per request, never cached, so that every worker and machine agrees.
  local created
  if tenants.space_mapping(tenant, bucket) then
    local exists, eerr = space_bucket_exists(ctx, bucket)
    if exists == nil then return store_fail(ctx, eerr) end
    created = exists
  end
  local sb, skey, mapping = st.reg:map(tenant, bucket, key, perm_or_why, created)
  if not sb then return fail(ctx, skey) end
  ctx.created = created
  if ALSO_NEEDS[op] and not mapping.allow[ALSO_NEEDS[op]] then
    return fail(ctx, s3err("AccessDenied", 403, "Access Denied"))
  end
  ctx.store_bucket, ctx.store_prefix, ctx.store_key, ctx.key = sb, mapping.prefix, skey, key
  return HANDLERS[op](ctx, args, headers, auth)
end

--- handle(config)
-- The content handler: answers the current request as an S3 server.
-- `config`: tenants (path of the tenants file, objstore.front.tenants),
-- region (the region clients sign for, default "us-east-1"; a string or a
-- list), domain (the virtual-host domain: `bucket.<domain>`; without it
-- only path-style), shared_dict (the name of a lua_shared_dict in which
-- the workers share the newest valid tenants file), limits_dict (the
-- lua_shared_dict counting the tenants' `limits`, objstore.front.limits;
-- needed when a tenant has limits), metrics_dict (the lua_shared_dict of
-- objstore.front.counters: the store client's metrics go there too),
-- store = { endpoint or endpoints,
-- region, access_key, secret_key, timeout, connect_timeout }: `endpoints`
-- (a list of URLs of one store, tried in order, the client's failover: an
-- endpoint that refuses or resets is left for the next) instead of one
-- `endpoint`. Read once per worker, on its first request.
function _M.handle(config)
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    errors.argument("front.server.handle", nil, nil, "needs OpenResty's ngx (call it inside nginx)")
  end
  -- error_page's redirect of nginx's own refusal (never a client's
  -- request, which is not internal: a key of that name is served)
  if ngx.req.is_internal() and ngx.var.uri == _M.ERROR_URI then return _M.nginx_error() end
  -- bytes_out: the response body bytes, counted as they are sent
  local ctx = { rid = ngx.var.request_id or tostring(ngx.now()), resource = "/", bytes_out = 0 }
  ngx.header["x-amz-request-id"] = ctx.rid
  ngx.ctx.objstore_front = ctx  -- what objstore.front.counters.log counts
  local ok, err = pcall(serve, config, ctx)
  if not ok then
    ngx.log(ngx.ERR, "objstore.front: ", tostring(err))
    if ngx.headers_sent then return ngx.exit(ngx.ERROR) end
    return fail(ctx, s3err("InternalError", 500, "We encountered an internal error. Please try again."))
  end
end

--- "a, b,c" -> { "a", "b", "c" }: a list given in one environment variable
-- (FRONT_STORE_ENDPOINTS in examples/front/nginx.conf); nil when empty.
function _M.split_list(s)
  local out = {}
  for item in tostring(s):gmatch("[^,%s]+") do out[#out + 1] = item end
  return #out > 0 and out or nil
end

--- The URI error_page takes nginx's own refusals to, in the location of
-- handle, which answers them with nginx_error.
_M.ERROR_URI = "/_objstore_s3_error"

--- The server's error_page for nginx's own refusals (a body over
-- client_max_body_size, headers over large_client_header_buffers, a
-- request nginx cannot parse, a timeout): S3's XML error with an
-- x-amz-request-id, as every other answer of the front, never nginx's HTML.
--   error_page 400 408 411 413 414 500 502 503 504 /_objstore_s3_error;
--   error_page 494 =494 /_objstore_s3_error;  # else nginx passes it on as a 400
-- handle calls it for error_page's internal redirect to ERROR_URI, so the
-- URI needs no location of its own (one would hide the key of that name
-- in virtual-host style); by URI, not a named location: a request line
-- nginx could not parse has no URI to take to a named location, and
-- would get nginx's HTML 500.
function _M.nginx_error()
  local ngx = rawget(_G, "ngx")
  local rid = ngx.var.request_id or tostring(ngx.now())
  local err = s3_error.for_nginx_status(ngx.status)
  local body, status = s3_error.render(err, { request_id = rid })
  ngx.status = status
  ngx.header["x-amz-request-id"] = rid
  ngx.header["Content-Type"] = "application/xml"
  ngx.header["Content-Length"] = #body
  if ngx.req.get_method() ~= "HEAD" then ngx.print(body) end
  return ngx.exit(status)
end

return _M
