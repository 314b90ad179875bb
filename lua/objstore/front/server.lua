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
-- GetObject, PutObject (streamed, its payload hash or aws-chunked
-- signatures verified as it streams; the last piece is sent to the store
-- only once the whole body is verified), DeleteObject. Every other
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

local type, pairs, ipairs, tostring, tonumber, pcall, rawget =
  type, pairs, ipairs, tostring, tonumber, pcall, rawget
local sub, gsub = string.sub, string.gsub
local concat = table.concat
local hmac = core.hash.hmac
local uri_encode = core.encode.uri_encode

local _M = { _VERSION = core._VERSION }

local XMLNS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
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
  local reg, err = tenants.new(config.tenants, { log = log, now = ngx.time,
    fallback = preloaded and preloaded.path == config.tenants and preloaded.set or nil })
  if not reg then return nil, err end
  local client = objstore.new{
    endpoint = store.endpoint, region = store.region or "us-east-1", addressing = "path",
    access_key = store.access_key, secret_key = store.secret_key,
    timeout = store.timeout or 600, connect_timeout = store.connect_timeout or 5,
    retry = { max_attempts = 3 },
  }
  state = {
    reg = reg, client = client, region = config.region or "us-east-1",
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
  if ngx.req.get_method() ~= "HEAD" then ngx.print(body) end
  return ngx.exit(status)
end

local function fail(ctx, err)
  local body, status = s3_error.render(err, { resource = ctx.resource, request_id = ctx.rid })
  if ngx.req.get_method() == "HEAD" then
    ngx.status = status
    return ngx.exit(status)
  end
  return send_xml(status, body)
end

-- Store errors passed on by code (the status of S3); others are internal.
local STORE_CODES = {
  NoSuchKey = 404, InvalidRange = 416, PreconditionFailed = 412, BadDigest = 400, InvalidDigest = 400,
  EntityTooLarge = 400, EntityTooSmall = 400, InvalidArgument = 400, SlowDown = 503, AccessDenied = 403,
}
local STORE_MESSAGES = {
  NoSuchKey = "The specified key does not exist.", InvalidRange = "The requested range is not satisfiable",
  PreconditionFailed = "At least one of the pre-conditions you specified did not hold",
  BadDigest = "The Content-MD5 you specified did not match what we received.",
  InvalidDigest = "The Content-MD5 you specified is not valid.", SlowDown = "Please reduce your request rate.",
  AccessDenied = "Access Denied", EntityTooLarge = "Your proposed upload exceeds the maximum allowed size",
}

local function store_fail(ctx, err)
  local code, status = err and err.code, err and err.status
  if status == 304 then
    ngx.status = 304
    return ngx.exit(304)
  end
  local expected = status == 404 or status == 412 or status == 416
  ngx.log(expected and ngx.INFO or ngx.WARN, "objstore.front: ", ctx.op or "?", " on the store failed: ",
    tostring(err))
  local s = STORE_CODES[code]
  if not s and status == 404 and ctx.method == "HEAD" then code, s = "NoSuchKey", 404 end
  if s then
    return fail(ctx, s3err(code, s, STORE_MESSAGES[code] or code))
  end
  if code == "NoSuchBucket" then
    return fail(ctx, s3err("NoSuchBucket", 404, "The specified bucket does not exist", { bucket_name = ctx.bucket }))
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

local function check_headers(headers, put)
  for name, v in pairs(headers) do
    name = name:lower()
    if type(v) == "table" and (SINGLE[name] or sub(name, 1, 6) == "x-amz-") then
      return s3err("InvalidArgument", 400, "The header " .. name .. " is repeated")
    end
    if sub(name, 1, 6) == "x-amz-" and not AMZ_OK[name] and not (put and sub(name, 1, 11) == "x-amz-meta-") then
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
  for _, name in ipairs(ctx.st.reg:buckets(ctx.tenant)) do
    out[#out + 1] = '<Bucket><Name>' .. escape(name) .. '</Name><CreationDate>2000-01-01T00:00:00.000Z'
      .. '</CreationDate></Bucket>'
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
local function list_objects(ctx, args)
  local v2 = arg(args, "list-type") == "2"
  if args["list-type"] ~= nil and not v2 then
    return fail(ctx, s3err("InvalidArgument", 400, "Invalid List Type specified"))
  end
  local fo = arg(args, "fetch-owner")
  if fo ~= nil and fo ~= "false" then return fail(ctx, not_implemented("fetch-owner")) end
  local enc = arg(args, "encoding-type")
  if enc ~= nil and enc ~= "url" then
    return fail(ctx, s3err("InvalidArgument", 400, "Invalid Encoding Method specified in Request"))
  end
  local max = 1000
  if args["max-keys"] ~= nil then
    max = tonumber(arg(args, "max-keys"))
    if not max or max < 0 or max ~= math.floor(max) then
      return fail(ctx, s3err("InvalidArgument", 400, "Provided max-keys not an integer or within integer range"))
    end
    if max > 1000 then max = 1000 end
  end
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
        .. tostring(tonumber(o.size) or 0) .. "</Size><StorageClass>" .. escape(o.storage_class or "STANDARD")
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
  end
  local res, err = onx.serve_object(ctx.st.client, ctx.store_bucket, ctx.store_key, opts)
  if not res then return store_fail(ctx, err) end
  return ngx.exit(ngx.OK)
end

local PUT_HEADERS = { ["cache-control"] = "cache_control", ["content-disposition"] = "content_disposition",
  ["content-language"] = "content_language", expires = "expires", ["if-match"] = "if_match",
  ["if-none-match"] = "if_none_match" }

-- The body, verified as it streams: a reader that holds back its last
-- piece until the whole body is checked, so a body that fails the check
-- never reaches the store whole (the store then sees a short body and
-- stores nothing).
local function verified_reader(ctx, raw, auth)
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
      finished = true
      return false
    end
    if dec then return dec:feed(piece) end
    checker:update(piece)
    return piece
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

local function put_object(ctx, auth, headers)
  if headers["x-amz-copy-source"] then return fail(ctx, not_implemented("CopyObject")) end
  local streaming = sub(auth.payload or "", 1, 10) == "STREAMING-"
  -- A chunked transfer is accepted for aws-chunked bodies (their decoded
  -- length is declared), spooled by nginx (client_max_body_size bounds it).
  local spool = ngx.var.http_transfer_encoding ~= nil
  if spool and not streaming or not spool and not tonumber(ngx.var.http_content_length) then
    return fail(ctx, s3err("MissingContentLength", 411, "You must provide the Content-Length HTTP header."))
  end
  local length = tonumber(ngx.var.http_content_length)
  if streaming then
    length = tonumber(auth.decoded_content_length or headers["x-amz-decoded-content-length"])
    if not length then
      return fail(ctx, s3err("MissingContentLength", 411, "You must provide the x-amz-decoded-content-length header."))
    end
  end
  local opts = { length = length, content_md5 = headers["content-md5"] or false,
    content_type = headers["content-type"] or "binary/octet-stream" }
  for h, o in pairs(PUT_HEADERS) do if type(headers[h]) == "string" then opts[o] = headers[h] end end
  local ce = headers["content-encoding"]
  if type(ce) == "string" then
    local kept = {}
    for e in ce:gmatch("[^,%s]+") do if e:lower() ~= "aws-chunked" then kept[#kept + 1] = e end end
    if #kept > 0 then opts.content_encoding = concat(kept, ",") end
  end
  local meta
  for name, v in pairs(headers) do
    if sub(name, 1, 11) == "x-amz-meta-" then
      local m = sub(name, 12)
      if not m:find("^[%w%-_%.]+$") or type(v) ~= "string" then
        return fail(ctx, s3err("InvalidArgument", 400, "Metadata names must be letters, digits, - _ and ."))
      end
      meta = meta or {}
      meta[m] = v
    end
  end
  opts.metadata = meta
  pcall(ngx.on_abort, function() ctx.aborted = true end)
  local raw, rerr
  if spool then
    raw, rerr = spooled_reader()
    if not raw then return fail(ctx, rerr) end
  else
    raw, rerr = onx.request_body_reader(64 * 1024)
    if not raw then return fail(ctx, s3err("MissingContentLength", 411, tostring(rerr and rerr.message))) end
  end
  local reader, failure, drain = verified_reader(ctx, raw, auth)
  if not reader then return fail(ctx, failure) end
  local body = reader
  if length == 0 then
    local ok, derr = drain()
    if not ok then return fail(ctx, derr) end
    body = ""
  end
  local res, err = ctx.st.client:put_object(ctx.store_bucket, ctx.store_key, body, opts)
  if not res then
    local f = failure()
    if ctx.aborted then return ngx.exit(499) end
    if f then return fail(ctx, f) end
    return store_fail(ctx, err)
  end
  ngx.status = 200
  if res.etag then ngx.header["ETag"] = res.etag end
  ngx.header["Content-Length"] = 0
  return ngx.exit(200)
end

local function delete_object(ctx)
  local res, err = ctx.st.client:delete_object(ctx.store_bucket, ctx.store_key)
  if not res then return store_fail(ctx, err) end
  ngx.status = 204
  return ngx.exit(204)
end

local function head_bucket(ctx)
  ngx.status = 200
  ngx.header["x-amz-bucket-region"] = ctx.st.region
  return ngx.exit(200)
end

-- What a request is: (operation name, needed permission, allowed query).
local function route(method, key, args)
  if key == nil then
    if method == "GET" then
      for _, sub_resource in ipairs({ "acl", "location", "versioning", "uploads", "policy", "tagging", "cors",
        "lifecycle", "versions", "website", "logging", "notification", "replication", "encryption",
        "object-lock", "ownershipControls", "publicAccessBlock", "accelerate", "requestPayment",
        "analytics", "inventory", "metrics", "intelligent-tiering" }) do
        if args[sub_resource] ~= nil then return nil, "GET Bucket ?" .. sub_resource end
      end
      return "ListObjects", "list", Q_LIST
    end
    if method == "HEAD" then return "HeadBucket", "list", Q_NONE end
    return nil, method .. " on a bucket (" .. (method == "PUT" and "CreateBucket or a bucket configuration"
      or method == "DELETE" and "DeleteBucket" or method == "POST" and "DeleteObjects" or "?") .. ")"
  end
  for _, mp in ipairs({ "uploads", "uploadId", "partNumber" }) do
    if args[mp] ~= nil then return nil, "multipart uploads (?" .. mp .. ")" end
  end
  for _, sub_resource in ipairs({ "acl", "tagging", "retention", "legal-hold", "torrent", "restore", "select",
    "attributes", "versionId" }) do
    if args[sub_resource] ~= nil then return nil, method .. " Object ?" .. sub_resource end
  end
  if method == "GET" then return "GetObject", "read", Q_GET end
  if method == "HEAD" then return "HeadObject", "read", Q_NONE end
  if method == "PUT" then return "PutObject", "write", Q_NONE end
  if method == "DELETE" then return "DeleteObject", "delete", Q_NONE end
  return nil, method .. " Object"
end

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
    return list_buckets(ctx)
  end
  ctx.bucket = bucket
  local key = rawkey and rawkey ~= "" and unescape_path(rawkey) or nil
  local op, perm_or_why, allowed = route(method, key, args)
  if not op then return fail(ctx, not_implemented(perm_or_why)) end
  ctx.op = op
  local bad = check_query(args, allowed) or check_headers(headers, op == "PutObject")
  if bad then return fail(ctx, bad) end
  local sb, skey, mapping = st.reg:map(tenant, bucket, key, perm_or_why)
  if not sb then return fail(ctx, skey) end
  ctx.store_bucket, ctx.store_prefix, ctx.store_key = sb, mapping.prefix, skey
  if op == "ListObjects" then return list_objects(ctx, args) end
  if op == "HeadBucket" then return head_bucket(ctx) end
  if op == "GetObject" or op == "HeadObject" then return get_object(ctx, args) end
  if op == "PutObject" then return put_object(ctx, auth, headers) end
  return delete_object(ctx)
end

--- handle(config)
-- The content handler: answers the current request as an S3 server.
-- `config`: tenants (path of the tenants file, objstore.front.tenants),
-- region (the region clients sign for, default "us-east-1"; a string or a
-- list), domain (the virtual-host domain: `bucket.<domain>`; without it
-- only path-style), store = { endpoint, region, access_key, secret_key,
-- timeout, connect_timeout }. Read once per worker, on its first request.
function _M.handle(config)
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    errors.argument("front.server.handle", nil, nil, "needs OpenResty's ngx (call it inside nginx)")
  end
  local ctx = { rid = ngx.var.request_id or tostring(ngx.now()), resource = "/" }
  ngx.header["x-amz-request-id"] = ctx.rid
  local ok, err = pcall(serve, config, ctx)
  if not ok then
    ngx.log(ngx.ERR, "objstore.front: ", tostring(err))
    if ngx.headers_sent then return ngx.exit(ngx.ERROR) end
    return fail(ctx, s3err("InternalError", 500, "We encountered an internal error. Please try again."))
  end
end

return _M
