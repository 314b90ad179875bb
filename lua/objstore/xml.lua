--- objstore.xml: S3/OSS XML bodies to plain Lua tables and back.
--
-- Parsing is done by libxml2 in the C core (`core.xml.parse`, a generic
-- element tree); this module turns that tree into the tables the client
-- returns, and builds request bodies.
--
--   xml.parse(s [, opts])          -> result, root_name | nil, err
--   xml.error(s [, opts])          -> { code=, message=, request_id=, host_id=, resource=, ... } | nil, err
--   xml.decode_url_fields(result)  -> result (EncodingType=url fields decoded in place)
--   xml.build(root_name, tree [, ns]) -> XML document string
--   xml.escape(s)                  -> s escaped as XML text / attribute value
--   xml.parse_tree(s [, opts])     -> generic tree | nil, err (core.xml.parse)
--   xml.url_decode(s)              -> s percent-decoded, '+' as space
--   xml.snake(name)                -> snake_case of an element name
--   xml.LIST_ELEMENTS              -> { [parent] = { [child] = true } }
--
-- Errors: misuse raises ("objstore.xml.parse: argument #1 (s): must be a
-- string, got nil"); a body that cannot be parsed returns nil, err, where
-- err is an error value (objstore.errors) with code MalformedResponse.
--
-- Shape of xml.parse results:
-- * field names are the element names in snake_case (`KeyCount` -> `key_count`,
--   `ID` -> `id`, `ETag` -> `etag`); namespaces are ignored (S3 sends
--   xmlns="http://s3.amazonaws.com/doc/2006-03-01/", OSS usually none);
-- * a leaf element is its text exactly as in the document (entities decoded,
--   whitespace kept); an element with children is a table;
-- * elements that are list-typed in the S3/OSS APIs (see LIST_ELEMENTS; the
--   parent matters: `Bucket` is a list inside `Buckets` but a string in
--   `InitiateMultipartUploadResult`, `DeleteMarker` a list in
--   `ListVersionsResult` but a boolean in `Deleted`) are always arrays, empty
--   when absent; other elements that repeat become arrays too;
-- * attributes of non-leaf elements become fields when no child has the same
--   name (S3 ACLs: `Grantee xsi:type="CanonicalUser"` -> `grantee.type`);
-- * types follow boto3: `Size`, `KeyCount`, `MaxKeys`, `MaxUploads`, `MaxParts`,
--   `PartNumber`, ... are integers, `IsTruncated`, `IsLatest`,
--   `DeleteMarker` (in `Deleted`), `Quiet`, ... are booleans (see INTEGER and
--   BOOLEAN below); everything else, including dates, ETags (quotes kept),
--   `PartNumberMarker` (a string in botocore's model) and empty elements (""),
--   stays a string. A value that does not look like its type stays a string.
-- * a root element without children gives `{ text = <its text> }`
--   (e.g. GetBucketLocation's `<LocationConstraint>`).
local core = require "objstore.core"
local errors = require "objstore.errors"

local cxml = core.xml
local type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable =
  type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable
local string_char, string_format, table_concat, table_sort, math_floor, math_huge =
  string.char, string.format, table.concat, table.sort, math.floor, math.huge
local math_type = math.type -- nil before Lua 5.3

local M = { _VERSION = core._VERSION }

-- Elements that are lists in the S3/OSS APIs, by parent element: they are
-- arrays even with one (or zero) entries. Request bodies are listed too so a
-- build -> parse round trip keeps their shape.
local LIST_ELEMENTS = {
  ListBucketResult = { Contents = true, CommonPrefixes = true },
  ListVersionsResult = { Version = true, DeleteMarker = true, CommonPrefixes = true },
  ListMultipartUploadsResult = { Upload = true, CommonPrefixes = true },
  ListPartsResult = { Part = true },
  DeleteResult = { Deleted = true, Error = true },
  Buckets = { Bucket = true },
  AccessControlList = { Grant = true },
  CompleteMultipartUpload = { Part = true },
  Delete = { Object = true },
  TagSet = { Tag = true },
  And = { Tag = true },
  LifecycleConfiguration = { Rule = true },
  Rule = { Transition = true, NoncurrentVersionTransition = true },
  CORSConfiguration = { CORSRule = true },
  CORSRule = { AllowedMethod = true, AllowedOrigin = true, AllowedHeader = true, ExposeHeader = true },
  ObjectParts = { Part = true },
  RefererList = { Referer = true },
}
M.LIST_ELEMENTS = LIST_ELEMENTS

-- Containers a root always has, so callers can index them without checks.
local ROOT_CONTAINERS = {
  ListAllMyBucketsResult = { "Buckets" },
}

local INTEGER = {}
for _, n in ipairs({ "Size", "KeyCount", "MaxKeys", "MaxUploads", "MaxParts", "PartNumber", "ObjectSize",
  "PartsCount", "TotalPartsCount", "Days", "NoncurrentDays", "NewerNoncurrentVersions", "Years",
  "MaxAgeSeconds" }) do
  INTEGER[n] = true
end
local BOOLEAN = {}
for _, n in ipairs({ "IsTruncated", "IsLatest", "DeleteMarker", "Quiet", "BucketKeyEnabled",
  "IsRestoreInProgress", "BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets",
  "ExpiredObjectDeleteMarker" }) do
  BOOLEAN[n] = true
end
M.INTEGER, M.BOOLEAN = INTEGER, BOOLEAN

-- Names whose mechanical snake_case reads badly.
local SNAKE_EXCEPTIONS = { ETag = "etag" }
local snake_cache = {}

--- snake_case of an element name: `ListBucketResult` -> `list_bucket_result`,
-- `ID` -> `id`, `NextKeyMarker` -> `next_key_marker`, `ETag` -> `etag`.
local function snake(name)
  local s = snake_cache[name]
  if s then return s end
  if type(name) ~= "string" then errors.argument("xml.snake", 1, "name", "must be a string, " .. errors.got(name)) end
  s = SNAKE_EXCEPTIONS[name]
  if not s then
    s = name:gsub("(%l)(%u)", "%1_%2")
    s = s:gsub("(%u)(%u%l)", "%1_%2")
    s = s:lower()
  end
  snake_cache[name] = s
  return s
end
M.snake = snake

local function typed(name, text)
  if INTEGER[name] then
    if text:match("^%-?%d+$") then return tonumber(text) end
  elseif BOOLEAN[name] then
    if text == "true" then return true end
    if text == "false" then return false end
  end
  return text
end

local convert

local function empty_container(name)
  local out = {}
  local lists = LIST_ELEMENTS[name]
  if lists then
    for child in pairs(lists) do out[snake(child)] = {} end
  end
  return out
end

-- Generic tree node -> plain value (see the shape notes at the top).
convert = function(node)
  local n = #node
  local name = node.name
  if n == 0 then
    if LIST_ELEMENTS[name] then return empty_container(name) end
    return typed(name, node.text)
  end
  local lists = LIST_ELEMENTS[name]
  local out, promoted = {}, nil -- promoted: the keys made lists here (made only when needed)
  for i = 1, n do
    local c = node[i]
    local cname = c.name
    local k = snake_cache[cname] or snake(cname)
    local v
    if c[1] == nil and not LIST_ELEMENTS[cname] then
      v = typed(cname, c.text) -- a leaf (convert's first case, without the call)
    else
      v = convert(c)
    end
    if lists and lists[cname] then
      local arr = out[k]
      if arr == nil then
        arr = {}
        out[k] = arr
      end
      arr[#arr + 1] = v
    else
      local prev = out[k]
      if prev == nil then
        out[k] = v
      elseif promoted and promoted[k] then
        prev[#prev + 1] = v
      else
        -- Repeated siblings the table does not know about: promote to a list.
        promoted = promoted or {}
        promoted[k] = true
        out[k] = { prev, v }
      end
    end
  end
  if lists then
    for cname in pairs(lists) do
      local k = snake(cname)
      if out[k] == nil then out[k] = {} end
    end
  end
  if node.attr then
    for aname, av in pairs(node.attr) do
      local k = snake(aname)
      if out[k] == nil then out[k] = av end
    end
  end
  return out
end

-- Misuse checks of parse, parse_tree and error(s [, opts]), blamed on the
-- first caller outside objstore.
local function check_doc(fname, s, opts)
  if type(s) ~= "string" then
    errors.argument("xml." .. fname, 1, "s", "must be a string, " .. errors.got(s))
  end
  if opts ~= nil and type(opts) ~= "table" then
    errors.argument("xml." .. fname, 2, "opts", "must be a table or nil, " .. errors.got(opts))
  end
end

--- Generic element tree of an XML document (see csrc/l_xml.c), or nil, err.
function M.parse_tree(s, opts)
  check_doc("parse_tree", s, opts)
  return cxml.parse(s, opts)
end

--- Parses an S3/OSS response body into a plain table (see the notes above).
-- Returns result, root element name; or nil, err for malformed XML or a
-- document over the size/depth limits (opts.max_size, opts.max_depth).
function M.parse(s, opts)
  check_doc("parse", s, opts)
  local root, err = cxml.parse(s, opts)
  if not root then return nil, err end
  local out
  if #root == 0 and not LIST_ELEMENTS[root.name] then
    out = { text = root.text }
  else
    out = convert(root)
  end
  local containers = ROOT_CONTAINERS[root.name]
  if containers then
    for _, cname in ipairs(containers) do
      local k = snake(cname)
      if out[k] == nil then out[k] = empty_container(cname) end
    end
  end
  return out, root.name
end

--- Parses an S3/OSS <Error> body: every child in snake_case, all strings
-- (code, message, request_id, host_id, resource, and extras such as
-- bucket_name, key, ec, signature_provided). The query APIs' ErrorResponse
-- (STS) gives the fields of its Error and its RequestId. nil, err when the
-- body is malformed or its root is neither.
function M.error(s, opts)
  check_doc("error", s, opts)
  local root, err = cxml.parse(s, opts)
  if not root then return nil, err end
  local out = {}
  if root.name == "ErrorResponse" then
    -- The AWS query APIs (STS, IAM): <ErrorResponse><Error>...</Error>
    -- <RequestId>...</RequestId></ErrorResponse>.
    local inner
    for i = 1, #root do
      local c = root[i]
      if c.name == "Error" then inner = c elseif #c == 0 then out[snake(c.name)] = c.text end
    end
    root = inner or root
  elseif root.name ~= "Error" then
    return nil, errors.new{ code = "MalformedResponse", retryable = false,
      message = "xml: expected an Error document, got <" .. root.name .. ">" }
  end
  for i = 1, #root do
    local c = root[i]
    out[snake(c.name)] = (#c == 0) and c.text or convert(c)
  end
  return out
end

local function hex_byte(h)
  return string_char(tonumber(h, 16))
end

--- Decodes EncodingType=url values: '+' is a space (S3 and OSS form-encode
-- keys: botocore uses unquote_plus, the OSS Go SDK url.QueryUnescape; a real
-- '+' arrives as %2B), then %XX; a '%' without two hex digits is kept.
local function url_decode(s)
  if type(s) ~= "string" then errors.argument("xml.url_decode", 1, "s", "must be a string, " .. errors.got(s)) end
  s = s:gsub("+", " ")
  s = s:gsub("%%(%x%x)", hex_byte)
  return s
end
M.url_decode = url_decode

-- Fields S3/OSS encode when the request asked for encoding-type=url
-- (S3: Delimiter, Marker, Prefix, NextMarker, StartAfter, KeyMarker,
-- NextKeyMarker, Key; OSS also Key in DeleteResult, ListParts and the
-- multipart results). Continuation tokens are opaque and never decoded.
local URL_TOP = { "prefix", "delimiter", "marker", "next_marker", "start_after", "key_marker", "next_key_marker",
  "key" }
local URL_NESTED = { contents = "key", version = "key", delete_marker = "key", upload = "key", deleted = "key",
  error = "key", common_prefixes = "prefix" }
local decoded = setmetatable({}, { __mode = "k" })

--- Applies EncodingType=url decoding to an xml.parse result, in place, when
-- the result says `encoding_type = "url"`; otherwise leaves it alone.
-- Decoding a result twice is a no-op the second time. Returns the result.
function M.decode_url_fields(result)
  if type(result) ~= "table" then
    errors.argument("xml.decode_url_fields", 1, "result", "must be a table, " .. errors.got(result))
  end
  local et = result.encoding_type
  if type(et) ~= "string" or et:lower() ~= "url" or decoded[result] then return result end
  decoded[result] = true
  for _, k in ipairs(URL_TOP) do
    if type(result[k]) == "string" then result[k] = url_decode(result[k]) end
  end
  for list, field in pairs(URL_NESTED) do
    local arr = result[list]
    if type(arr) == "table" then
      for _, e in ipairs(arr) do
        if type(e) == "table" and type(e[field]) == "string" then e[field] = url_decode(e[field]) end
      end
    end
  end
  return result
end

M.escape = cxml.escape

------------------------------------------------------------------------------
-- Building request bodies.
--
-- xml.build(root_name, tree [, ns]) writes
--   <?xml version="1.0" encoding="UTF-8"?><root_name xmlns="ns">...</root_name>
-- tree (the root's content) is either
-- * a map { Name = value, ... }: children in sorted name order (S3 and OSS do
--   not depend on order in the bodies this client sends), or
-- * an ordered list of pairs { {"Name", value}, ... } when order matters.
-- A value is a string, a number (integers written without exponent), a
-- boolean ("true"/"false"), a table (the element's content, same two forms),
-- or in a map an array of values (the element repeated):
--   xml.build("Delete", { Quiet = true, Object = { { Key = "a" }, { Key = "b&c" } } })
-- Keys starting with "@" are attributes: { ["@xmlns:xsi"] = "...", ["@xsi:type"] = "Group" }.
-- Text is escaped with xml.escape: & < > " ' as entities, control characters
-- as &#xN; references (S3's documented form for CR/LF in keys; the OSS SDKs
-- send &#x1; style references for the rest). Misuse (bad names, cycles,
-- values XML cannot hold: NUL, invalid UTF-8) raises, naming the place:
-- "objstore.xml.build: argument #2 (tree.Object[2].Key): ...".

local MAX_BUILD_DEPTH = 64

-- Paths start with the argument they are in: root_name, tree or ns.
local ARG_OF = { root_name = 1, tree = 2, ns = 3 }

local function bfail(path, msg)
  error({ n = ARG_OF[path:match("^[%a_]+")] or 2, name = path, problem = msg }, 0)
end

local function check_name(name, path)
  if type(name) ~= "string" or not name:match("^[%a_][%w_%.%-]*:?[%w_%.%-]*$") or name:sub(-1) == ":" then
    bfail(path, "invalid element or attribute name " .. string_format("%q", tostring(name)))
  end
end

local function text_of(v, path)
  local t = type(v)
  if t == "string" then
    local ok, res = pcall(cxml.escape, v)
    if not ok then bfail(path, "value is not representable in XML 1.0 (NUL, invalid UTF-8, U+FFFE or U+FFFF)") end
    return res
  elseif t == "number" then
    if math_type and math_type(v) == "integer" then return tostring(v) end
    if v ~= v or v == math_huge or v == -math_huge then bfail(path, "number is not finite") end
    if v == math_floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return string_format("%.0f", v) end
    return string_format("%.17g", v)
  elseif t == "boolean" then
    return v and "true" or "false"
  end
  bfail(path, "value of type " .. t .. " cannot be written as XML text")
end

local function is_pairs(t)
  local first = t[1]
  return type(first) == "table" and type(first[1]) == "string"
end

local write_element

-- Writes the children of content table t (map or pair list) into buf.
local function write_children(buf, t, path, depth)
  if is_pairs(t) then
    for k in pairs(t) do
      if type(k) == "string" and k:sub(1, 1) ~= "@" then
        bfail(path, "mixes {name, value} pairs with the named field " .. k)
      end
    end
    for i, pair in ipairs(t) do
      if type(pair) ~= "table" or type(pair[1]) ~= "string" then
        bfail(path .. "[" .. i .. "]", "expected a {name, value} pair")
      end
      write_element(buf, pair[1], pair[2], path .. "." .. pair[1], depth + 1)
    end
    return
  end
  if t[1] ~= nil then bfail(path, "an array here must hold {name, value} pairs") end
  local names = {}
  for k in pairs(t) do
    if type(k) ~= "string" then bfail(path, "unexpected key of type " .. type(k)) end
    if k:sub(1, 1) ~= "@" then names[#names + 1] = k end
  end
  table_sort(names)
  for _, k in ipairs(names) do
    local v = t[k]
    if type(v) == "table" and v[1] ~= nil and not is_pairs(v) then
      for i = 1, #v do
        write_element(buf, k, v[i], path .. "." .. k .. "[" .. i .. "]", depth + 1)
      end
    else
      write_element(buf, k, v, path .. "." .. k, depth + 1)
    end
  end
end

local function write_attrs(buf, t, path)
  local names = {}
  for k in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) == "@" then names[#names + 1] = k end
  end
  table_sort(names)
  for _, k in ipairs(names) do
    local an = k:sub(2)
    check_name(an, path .. "." .. k)
    buf[#buf + 1] = " " .. an .. '="' .. text_of(t[k], path .. "." .. k) .. '"'
  end
end

write_element = function(buf, name, value, path, depth)
  if depth > MAX_BUILD_DEPTH then bfail(path, "nests deeper than " .. MAX_BUILD_DEPTH .. " levels (a cycle?)") end
  check_name(name, path)
  if type(value) == "table" then
    buf[#buf + 1] = "<" .. name
    write_attrs(buf, value, path)
    buf[#buf + 1] = ">"
    write_children(buf, value, path, depth)
    buf[#buf + 1] = "</" .. name .. ">"
  else
    buf[#buf + 1] = "<" .. name .. ">" .. text_of(value, path) .. "</" .. name .. ">"
  end
end

local function build(root_name, tree, ns)
  check_name(root_name, "root_name")
  local buf = { '<?xml version="1.0" encoding="UTF-8"?>', "<" .. root_name }
  if ns ~= nil then buf[#buf + 1] = ' xmlns="' .. text_of(ns, "ns") .. '"' end
  if type(tree) == "table" then
    write_attrs(buf, tree, "tree")
    buf[#buf + 1] = ">"
    write_children(buf, tree, "tree", 1)
  else
    buf[#buf + 1] = ">" .. text_of(tree, "tree")
  end
  buf[#buf + 1] = "</" .. root_name .. ">"
  return table_concat(buf)
end

--- Builds an XML request body; see the notes above.
function M.build(root_name, tree, ns)
  if type(root_name) ~= "string" then
    errors.argument("xml.build", 1, "root_name", "must be a string, " .. errors.got(root_name))
  end
  if tree == nil then tree = {} end
  local tt = type(tree)
  if tt ~= "table" and tt ~= "string" and tt ~= "number" and tt ~= "boolean" then
    errors.argument("xml.build", 2, "tree", "must be a table, " .. errors.got(tree))
  end
  if ns ~= nil and type(ns) ~= "string" then
    errors.argument("xml.build", 3, "ns", "must be a string or nil, " .. errors.got(ns))
  end
  local ok, res = pcall(build, root_name, tree, ns)
  if ok then return res end
  if type(res) == "table" and res.problem then errors.argument("xml.build", res.n, res.name, res.problem) end
  error(res, 0)
end

return M
