--- Generates docs/reference.md from the declarations: the operations of
-- objstore.operations (one client method each) and the public functions of
-- objstore, its client, engine, credentials, sts, metrics, ngx and front modules.
--
--   lua5.4 spec/support/gen_reference.lua docs/reference.md   (make docs)
--   local gen = loadfile("spec/support/gen_reference.lua")("--module")
--
-- What it reads, so the manual cannot drift from the code:
-- * parameters: the functions' own parameter names (debug.getlocal, Lua 5.2+
--   and LuaJIT);
-- * the options of an operation: the table its options are checked against
--   (objstore.ops.common.opts), captured by calling the method once with an
--   option no operation has, before any I/O;
-- * prose: the `---` comment above each declaration. An operation's block
--   starts with `--- name(params) -> result`; in any block, lines
--   `opts.NAME: meaning`, `result.NAME: meaning` and `errors: ...` are
--   gathered (indented lines continue them); the rest is the description.
--   An option's meaning comes from its operation's block, else from an
--   `opts.NAME:` line next to an option table elsewhere in the sources.
local arg_mode = ...

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local M = {}

local OP_FILES = { "lua/objstore/ops/bucket.lua", "lua/objstore/ops/object.lua", "lua/objstore/ops/list.lua",
  "lua/objstore/ops/multipart.lua", "lua/objstore/ops/tagging.lua", "lua/objstore/transfer/upload_file.lua",
  "lua/objstore/transfer/download_file.lua", "lua/objstore/transfer/upload_stream.lua",
  "lua/objstore/transfer/copy_large.lua", "lua/objstore/transfer/incomplete.lua" }
-- Files whose option-table comments (`opts.NAME: meaning`) form the glossary.
local GLOSSARY_FILES = { "lua/objstore/ops/common.lua", "lua/objstore/ops/sse.lua", "lua/objstore/ops/flexsum.lua",
  "lua/objstore/ops/body.lua", "lua/objstore/ops/list.lua", "lua/objstore/ops/object.lua",
  "lua/objstore/ops/multipart.lua", "lua/objstore/transfer/upload_file.lua",
  "lua/objstore/transfer/download_file.lua", "lua/objstore/transfer/upload_stream.lua",
  "lua/objstore/transfer/copy_large.lua", "lua/objstore/transfer/incomplete.lua" }
local OP_SECTIONS = {
  { "lua/objstore/ops/bucket.lua", "Buckets" }, { "lua/objstore/ops/object.lua", "Objects" },
  { "lua/objstore/ops/tagging.lua", "Objects" },
  { "lua/objstore/ops/list.lua", "Listings" }, { "lua/objstore/ops/multipart.lua", "Multipart uploads" },
  { "lua/objstore/transfer/upload_file.lua", "Transfers" },
  { "lua/objstore/transfer/download_file.lua", "Transfers" },
  { "lua/objstore/transfer/upload_stream.lua", "Transfers" }, { "lua/objstore/transfer/copy_large.lua", "Transfers" },
  { "lua/objstore/transfer/incomplete.lua", "Transfers" },
}

local function read_lines(path)
  local f = assert(io.open(path, "rb"))
  local lines = {}
  for l in f:lines() do lines[#lines + 1] = l end
  f:close()
  return lines
end

local cache = {}
local function lines_of(path)
  cache[path] = cache[path] or read_lines(path)
  return cache[path]
end

local function is_comment(l) return l:match("^%s*%-%-") ~= nil and not l:match("^%s*%-%-%[") end

local function strip(l) return (l:gsub("^%s*%-%-%-?", ""):gsub("^ ", "")) end

--- Parses comment lines (already stripped) into { head, desc = {lines},
-- opts = {name = text}, result = {{name, text}}, errors = text }.
local function parse_block(raw)
  local b = { desc = {}, opts = {}, opt_order = {}, result = {}, errors = nil }
  local cur -- the tagged item indented lines continue: { kind, name }
  for i, l in ipairs(raw) do
    local name, text = l:match("^opts%.([%w_]+):%s*(.*)$")
    local rname, rtext = l:match("^result%.([%w_]+):%s*(.*)$")
    local etext = l:match("^errors:%s*(.*)$")
    if i == 1 then
      b.head = l
    elseif name then
      b.opts[name] = text
      b.opt_order[#b.opt_order + 1] = name
      cur = { "opts", name }
    elseif rname then
      b.result[#b.result + 1] = { rname, rtext }
      cur = { "result", #b.result }
    elseif etext then
      b.errors = etext
      cur = { "errors" }
    elseif cur and l:match("^%s") and l:match("%S") then
      local more = l:gsub("^%s+", "")
      if cur[1] == "opts" then
        b.opts[cur[2]] = b.opts[cur[2]] .. " " .. more
      elseif cur[1] == "result" then
        b.result[cur[2]][2] = b.result[cur[2]][2] .. " " .. more
      else
        b.errors = b.errors .. " " .. more
      end
    else
      cur = nil
      b.desc[#b.desc + 1] = l
    end
  end
  return b
end

--- The comment block starting at line i (a `---` line): its stripped lines.
local function block_from(lines, i)
  local raw = {}
  while lines[i] and is_comment(lines[i]) and not (#raw > 0 and lines[i]:match("^%s*%-%-%-")) do
    raw[#raw + 1] = strip(lines[i])
    i = i + 1
  end
  return raw
end

--- The comment block directly above line i (from its first `---` line).
local function block_above(lines, i)
  local j = i - 1
  while j >= 1 and is_comment(lines[j]) do j = j - 1 end
  local first
  for k = j + 1, i - 1 do
    if lines[k]:match("^%s*%-%-%-") then first = k end
  end
  if not first then return nil end
  local raw = {}
  for k = first, i - 1 do raw[#raw + 1] = strip(lines[k]) end
  return raw
end

local unpack = table.unpack or unpack

local function esc(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

--- The doc block of operation `name`: the block whose head is `name(`.
local function op_block(name)
  for _, path in ipairs(OP_FILES) do
    local lines = lines_of(path)
    for i, l in ipairs(lines) do
      if l:match("^%-%-%- " .. esc(name) .. "%(") then return parse_block(block_from(lines, i)), path end
    end
  end
end

--- The doc block above the declaration of `name` in `path`:
-- `function X.name(`, `function X:name(` or `X.name =`.
local function fn_block(path, name)
  local lines = lines_of(path)
  local n = esc(name)
  local colon -- how the first declaration found was made
  for i, l in ipairs(lines) do
    if l:match("^function [%w_]+[%.:]" .. n .. "%(") or l:match("^[%w_]+%." .. n .. "%s*=") then
      local raw = block_above(lines, i)
      local c = l:match("^function [%w_]+:") ~= nil
      if raw then return parse_block(raw), c end
      if colon == nil then colon = c end
    end
  end
  -- functions made in a loop or aliased: a block headed `--- name(` anywhere
  for i, l in ipairs(lines) do
    if l:match("^%-%-%- " .. n .. "%(") then return parse_block(block_from(lines, i)), colon end
  end
  return nil, colon
end

--- Option meanings from comment blocks that are not an operation's.
local function glossary(op_names, files)
  local g = {}
  for _, path in ipairs(files or GLOSSARY_FILES) do
    local lines = lines_of(path)
    local i = 1
    while i <= #lines do
      if is_comment(lines[i]) then
        local raw = block_from(lines, i)
        local head = raw[1] or ""
        local opname = head:match("^([%w_]+)%(")
        if not (opname and op_names[opname]) then
          -- the block's head line can itself be an option line
          local b = parse_block({ "", unpack(raw) })
          for _, k in ipairs(b.opt_order) do
            if not g[k] then g[k] = b.opts[k] end
          end
        end
        i = i + #raw
      else
        i = i + 1
      end
    end
  end
  return g
end

--- The option meanings of one file's option-table comments.
local function file_glossary(path)
  return glossary({}, { path })
end

--- Parameter names of a Lua function, `...` for a vararg one.
local function params(fn, skip)
  local out = {}
  local i = 1
  while true do
    local name = debug.getlocal(fn, i)
    if not name then break end
    if i > skip then out[#out + 1] = name end
    i = i + 1
  end
  local info = debug.getinfo(fn, "u")
  if info and info.isvararg then out[#out + 1] = "..." end
  return out
end
M.params = params

--- The option tables of every operation, captured at objstore.ops.common.opts.
function M.option_tables()
  local common = require "objstore.ops.common"
  local operations = require "objstore.operations"
  local objstore = require "objstore"
  local c = objstore.new{ endpoint = "http://127.0.0.1:19880", access_key = "AKIDPROBE", secret_key = "probe",
    region = "us-east-1" }
  local PROBE = { ["objstore reference probe"] = true }
  local STOP = {}
  local real, captured = common.opts, nil
  common.opts = function(name, n, opts, allowed)
    if opts == PROBE then
      captured = captured or allowed
      error(STOP, 0)
    end
    return real(name, n, opts, allowed)
  end
  local values = { bucket = "docs20-probe", key = "k", body = "x", keys = { "a" }, src_bucket = "docs20-probe",
    src_key = "s", dst_bucket = "docs20-probe", dst_key = "d", upload_id = "u", part_number = 1,
    parts = { { part_number = 1, etag = "e" } }, path = "/tmp/docs20-probe-none", reader = function() end,
    source = { bucket = "docs20-probe", key = "s" }, prefix = "p", canned = "private", policy = "{}",
    status = "Enabled",
    rules = { { allowed_origins = { "*" }, allowed_methods = { "GET" } } } }
  local out = {}
  for name, entry in pairs(operations) do
    local fn = entry.call or entry.build
    local ps = params(fn, 1)
    local args, has_opts = {}, false
    for i, p in ipairs(ps) do
      if p == "opts" then
        args[i], has_opts = PROBE, true
      else
        args[i] = values[p]
      end
    end
    if has_opts then
      captured = nil
      local ok, err = pcall(c[name], c, unpack(args, 1, #ps))
      if ok or err ~= STOP or not captured then
        common.opts = real
        error("gen_reference: the option table of " .. name .. " was not reached: " .. tostring(err))
      end
      out[name] = captured
    end
  end
  -- The request API's functions with option tables of their own.
  for name, args in pairs{ presign = { "GET", "docs20-probe", "k" }, presigned_post = { "docs20-probe", "k" },
    sign_for_proxy = { "GET", "docs20-probe", "k" } } do
    captured = nil
    args[#args + 1] = PROBE
    local ok, err = pcall(c[name], c, unpack(args))
    if ok or err ~= STOP or not captured then
      common.opts = real
      error("gen_reference: the option table of " .. name .. " was not reached: " .. tostring(err))
    end
    out[name] = captured
  end
  common.opts = real
  c:close()
  return out
end

local function sorted_keys(t)
  local k = {}
  for name in pairs(t) do k[#k + 1] = name end
  table.sort(k)
  return k
end

local function lhs(returns)
  if not returns or returns == "" then return "" end
  if returns:find("^iterator") then return "iter = " end
  if returns:find("true | false", 1, true) then return "ok, err = " end
  if returns:find("nil, err", 1, true) then return "res, err = " end
  if returns:match("^[%a_]+$") then return returns .. " = " end -- a provider, a registry, ...
  return "res = "
end

local function emit_desc(out, desc)
  local incode = false
  local para = {}
  local function flush()
    if #para > 0 then
      out[#out + 1] = table.concat(para, " ")
      out[#out + 1] = ""
      para = {}
    end
  end
  for _, l in ipairs(desc) do
    if l:match("^%s%s") then
      flush()
      if not incode then
        out[#out + 1] = "```lua"
        incode = true
      end
      out[#out + 1] = (l:gsub("^%s%s", ""))
    else
      if incode then
        out[#out + 1] = "```"
        out[#out + 1] = ""
        incode = false
      end
      if l:match("%S") then para[#para + 1] = l else flush() end
    end
  end
  if incode then
    out[#out + 1] = "```"
    out[#out + 1] = ""
  end
  flush()
end

--- One entry: heading, syntax, returns, description, options, result, errors.
local function entry(out, heading, syntax, b, options, gloss, per_call)
  out[#out + 1] = "### " .. heading
  out[#out + 1] = ""
  out[#out + 1] = "`syntax: " .. syntax .. "`"
  out[#out + 1] = ""
  local returns = b and b.returns
  if returns and returns ~= "" then
    out[#out + 1] = "Returns `" .. returns .. "`."
    out[#out + 1] = ""
  end
  if b then emit_desc(out, b.desc) end
  if options then
    local besides = per_call and " (besides `hooks` and `deadline`, which every operation takes)" or ""
    if #options == 0 then
      out[#out + 1] = "Options: none" .. besides .. "."
    else
      out[#out + 1] = "Options" .. besides .. ":"
      out[#out + 1] = ""
      for _, k in ipairs(options) do
        local text = b and b.opts[k] or gloss[k]
        out[#out + 1] = "- `" .. k .. "`: " .. (text or "UNDOCUMENTED")
      end
    end
    out[#out + 1] = ""
  elseif b and #b.opt_order > 0 then
    out[#out + 1] = "Options:"
    out[#out + 1] = ""
    for _, k in ipairs(b.opt_order) do out[#out + 1] = "- `" .. k .. "`: " .. b.opts[k] end
    out[#out + 1] = ""
  end
  if b and #b.result > 0 then
    out[#out + 1] = "Result fields:"
    out[#out + 1] = ""
    for _, r in ipairs(b.result) do out[#out + 1] = "- `" .. r[1] .. "`: " .. r[2] end
    out[#out + 1] = ""
  end
  if b and b.errors then
    out[#out + 1] = "Errors: " .. b.errors
    out[#out + 1] = ""
  end
end

--- Splits a head `name(params) -> returns` into params text and returns.
local function split_head(b, name)
  if not b or not b.head then return end
  local ps, rest = b.head:match("^" .. esc(name) .. "%((.-)%)%s*(.*)$")
  if ps then
    b.head_params = ps
    b.returns = rest:match("^%->%s*(.*)$")
  else
    -- a head without a signature is the description's first line
    table.insert(b.desc, 1, b.head)
  end
end

-- The non-operation sections: title, the heading prefix, the module's
-- table, its source files, and which of its functions are methods.
function M.sections()
  local objstore = require "objstore"
  local Client = require "objstore.client"
  local Engine = require "objstore.engine"
  local metrics = require "objstore.metrics"
  local sts_client = require("objstore.sts").new{ provider = "s3", region = "us-east-1",
    endpoint = "http://127.0.0.1:19880", access_key = "AKIDPROBE", secret_key = "probe" }
  sts_client:close()
  return {
    { title = "objstore", prefix = "objstore.", mod = objstore, files = { "lua/objstore/init.lua" },
      -- sync and check take the options of objstore.sync, documented next to its table
      option_tables = { sync = require("objstore.sync").OPTS, check = require("objstore.sync").OPTS },
      option_docs = "lua/objstore/sync/init.lua",
      intro = "The module: `local objstore = require \"objstore\"`. It also holds `objstore.Client`, "
        .. "`objstore.credentials`, `objstore.sts` and `objstore.metrics`." },
    { title = "The client's request API", prefix = "client:", mod = Client, method = true,
      dot_prefix = "objstore.Client.",
      files = { "lua/objstore/client.lua", "lua/objstore/engine/init.lua" }, skip_ops = true,
      extra = { "send", "run", "now", "sign", "close" }, extra_mod = Engine,
      intro = "Beyond the operations, a client (made by `objstore.new`) has the request API every operation, "
        .. "transfer and sync is built on." },
    { title = "objstore.engine", prefix = "objstore.engine.", mod = Engine, files = { "lua/objstore/engine/init.lua" },
      method_prefix = "engine:",
      methods_elsewhere = { send = true, run = true, now = true, sign = true, close = true },
      intro = "The engine under every client and STS client (endpoints, transport, signers, credentials cache, "
        .. "retry, clock, observers). Its methods `send`, `run`, `now`, `sign` and `close` are the client's "
        .. "(see above); the other methods below are for the layers built on an engine (STS, credentials "
        .. "fetchers, presign, gateway): a client has them too." },
    { title = "objstore.credentials", prefix = "objstore.credentials.", mod = require "objstore.credentials",
      files = { "lua/objstore/credentials/init.lua" },
      intro = "Credential sources and providers. A provider is a function `provider(client, reason) -> "
        .. "{ access_key, secret_key, session_token?, expiration? } | nil, err`; see docs/credentials.md." },
    { title = "objstore.sts", prefix = "objstore.sts.", mod = require "objstore.sts",
      files = { "lua/objstore/sts.lua" },
      intro = "A client of AWS STS and Alibaba Cloud STS, built on the engine." },
    { title = "sts client", prefix = "sts:", mod = getmetatable(sts_client).__index, method = true,
      files = { "lua/objstore/sts.lua" },
      intro = "The object `objstore.sts.new(opts)` returns." },
    { title = "replicated store", prefix = "store:", mod = require("objstore.replicated").Replicated, method = true,
      files = { "lua/objstore/replicated.lua" },
      intro = "The object `objstore.replicated(opts)` returns: writes to every replica with a quorum and a "
        .. "durable repair journal, reads from the first replica that answers." },
    { title = "objstore.metrics", prefix = "objstore.metrics.", mod = metrics, files = { "lua/objstore/metrics.lua" },
      intro = "Counters and histograms fed by a client's hooks; see docs/events-and-metrics.md." },
    { title = "metrics registry", prefix = "registry:", mod = getmetatable(metrics.new()).__index, method = true,
      files = { "lua/objstore/metrics.lua" },
      intro = "The object `objstore.metrics.new()` returns." },
    { title = "objstore.openresty", prefix = "objstore.openresty.", mod = require "objstore.openresty",
      files = { "lua/objstore/openresty/init.lua" },
      intro = "Helpers for OpenResty request handlers; see docs/openresty.md." },
    { title = "objstore.openresty.credentials", prefix = "objstore.openresty.credentials.",
      mod = require "objstore.openresty.credentials",
      files = { "lua/objstore/openresty/credentials.lua" },
      intro = "A credentials cache shared by the nginx workers; see docs/openresty.md." },
    { title = "objstore.front.sigv4", prefix = "objstore.front.sigv4.", mod = require "objstore.front.sigv4",
      files = { "lua/objstore/front/sigv4.lua" },
      intro = "Verifies incoming S3 SigV4 requests (header and presigned) as S3 does: a library piece of the "
        .. "coming S3 front; see docs/front.md." },
    { title = "objstore.front.aws_chunked", prefix = "objstore.front.aws_chunked.",
      mod = require "objstore.front.aws_chunked", files = { "lua/objstore/front/aws_chunked.lua" },
      intro = "An incremental decoder of aws-chunked request bodies that checks chunk signatures, length and "
        .. "trailers; see docs/front.md." },
    { title = "aws-chunked decoder", prefix = "decoder:", mod = require("objstore.front.aws_chunked").Decoder,
      method = true, files = { "lua/objstore/front/aws_chunked.lua" },
      intro = "The object `objstore.front.aws_chunked.new(auth, opts)` returns." },
    { title = "objstore.front.s3_error", prefix = "objstore.front.s3_error.", mod = require "objstore.front.s3_error",
      files = { "lua/objstore/front/s3_error.lua" },
      intro = "S3's XML error document for an error value; see docs/front.md." },
    { title = "objstore.front.tenants", prefix = "objstore.front.tenants.", mod = require "objstore.front.tenants",
      files = { "lua/objstore/front/tenants.lua" },
      intro = "The tenants file of the S3 front: keys, buckets mapped to a store bucket and prefix, allowed "
        .. "operations; see docs/front.md." },
    { title = "tenants registry", prefix = "tenants:", mod = require("objstore.front.tenants").Registry,
      method = true, files = { "lua/objstore/front/tenants.lua" },
      intro = "The object `objstore.front.tenants.new(path, opts)` returns." },
    { title = "objstore.front.server", prefix = "objstore.front.server.", mod = require "objstore.front.server",
      files = { "lua/objstore/front/server.lua" },
      intro = "The S3 front's nginx content handler; see docs/front.md, \"The front server\"." },
  }
end

--- The public functions of a section's module: sorted names.
function M.functions(sec)
  local operations = require "objstore.operations"
  local names, seen = {}, {}
  for k, v in pairs(sec.mod) do
    if type(k) == "string" and type(v) == "function" and not k:match("^_") and
      not (sec.skip_ops and operations[k]) then
      names[#names + 1] = k
      seen[k] = true
    end
  end
  for _, k in ipairs(sec.extra or {}) do
    if not seen[k] then names[#names + 1] = k end
  end
  table.sort(names)
  return names
end

function M.generate()
  local operations = require "objstore.operations"
  local tables = M.option_tables()
  local gloss = glossary(operations)
  local out = { "<!-- Generated by spec/support/gen_reference.lua (make docs) from the sources: edit the `---` "
    .. "comments in lua/objstore, not this file. -->", "", "# objstore reference", "",
    "One entry per public function, in the convention of lua-resty-http: the syntax, what it returns, the "
      .. "options, the result fields and the errors. Guides: [docs/](./).", "",
    "Every function follows one rule: misuse (a wrong argument type, an unknown option) raises an error "
      .. "naming the function and the argument; a runtime failure returns `nil, err`, where `err` is a table "
      .. "`{ code, message, status, request_id, retryable, op, bucket, key, ... }` whose `tostring` reads like "
      .. "a log line. `code` is the store's error code (`NoSuchKey`, `AccessDenied`, `PreconditionFailed`, ...) "
      .. "or one of objstore's own: the transport's `ConnectFailed`, `ConnectionReset`, `Timeout`, `TLSError`, "
      .. "`ProtocolError`, `ResponseTooLarge`; `DeadlineExceeded`, `CredentialsError`, `NoCredentials`, "
      .. "`LocalFileError`, `BadDigest`, `MalformedResponse`, `SSENotApplied`, `ChecksumNotVerified`, "
      .. "`TruncatedListing`, `PaginationLoop`. `retryable` says whether the same request may succeed later "
      .. "(the client already retried it). Secrets never appear in errors.",
    "",
    "Every operation's last argument (its `opts`) also takes `hooks` (a table of `on_request`, `on_response`, "
      .. "`on_retry`, `on_failover`, `on_error` functions for this call only) and `deadline` (seconds for the "
      .. "whole call, every retry included).", "" }
  -- Contents
  out[#out + 1] = "## Contents"
  out[#out + 1] = ""
  out[#out + 1] = "- Client operations: buckets, objects, listings, multipart uploads, transfers"
  for _, sec in ipairs(M.sections()) do out[#out + 1] = "- " .. sec.title end
  out[#out + 1] = ""
  -- Operations, by the module that declares them
  local by_file = {}
  for name in pairs(operations) do
    local b, path = op_block(name)
    if not b then error("gen_reference: operation " .. name .. " has no `--- " .. name .. "(...)` comment") end
    by_file[path] = by_file[path] or {}
    by_file[path][#by_file[path] + 1] = { name = name, b = b }
  end
  local last_title
  for _, s in ipairs(OP_SECTIONS) do
    local list = by_file[s[1]] or {}
    table.sort(list, function(a, b) return a.name < b.name end)
    if s[2] ~= last_title then
      out[#out + 1] = "## Client operations: " .. s[2]
      out[#out + 1] = ""
      last_title = s[2]
    end
    for _, e in ipairs(list) do
      local entry_ = operations[e.name]
      local ps = params(entry_.call or entry_.build, 1)
      split_head(e.b, e.name)
      local written = e.b.head_params and e.b.head_params:gsub("%s", "")
      if written ~= table.concat(ps, ",") then
        error("gen_reference: the comment of " .. e.name .. " says (" .. tostring(e.b.head_params)
          .. ") but the code takes (" .. table.concat(ps, ", ") .. ")")
      end
      local opts = tables[e.name] and sorted_keys(tables[e.name]) or nil
      if opts == nil and #e.b.opt_order > 0 then opts = {} end
      entry(out, "client:" .. e.name, lhs(e.b.returns) .. "client:" .. e.name .. "(" .. table.concat(ps, ", ") .. ")",
        e.b, opts, gloss, true)
    end
  end
  -- The other modules
  for _, sec in ipairs(M.sections()) do
    out[#out + 1] = "## " .. sec.title
    out[#out + 1] = ""
    out[#out + 1] = sec.intro
    out[#out + 1] = ""
    for _, name in ipairs(M.functions(sec)) do
      local mod = sec.mod[name] and sec.mod or sec.extra_mod
      local fn = mod[name]
      local b, colon
      for _, f in ipairs(sec.files) do
        b, colon = fn_block(f, name)
        if b or colon ~= nil then break end
      end
      -- a method: declared with ':', or made in a loop with a first parameter self
      local method = colon or (colon == nil and debug.getlocal(fn, 1) == "self")
      if not (sec.methods_elsewhere and sec.methods_elsewhere[name]) then
        local ps = params(fn, method and 1 or 0)
        if b then split_head(b, name) end
        local recv = sec.prefix
        if method and sec.method_prefix then recv = sec.method_prefix end
        if not method and sec.dot_prefix then recv = sec.dot_prefix end
        local opts = sec.prefix == "client:" and tables[name] and sorted_keys(tables[name]) or nil
        local gl = gloss
        if sec.option_tables and sec.option_tables[name] then
          opts, gl = sorted_keys(sec.option_tables[name]), file_glossary(sec.option_docs)
        end
        entry(out, recv .. name, lhs(b and b.returns) .. recv .. name .. "(" .. table.concat(ps, ", ") .. ")",
          b or { desc = { "UNDOCUMENTED" }, opts = {}, opt_order = {}, result = {} }, opts, gl)
      end
    end
  end
  local text = table.concat(out, "\n")
  text = text:gsub("\n\n+", "\n\n"):gsub("%s+$", "")
  return text .. "\n"
end

if arg_mode == "--module" then return M end

local text = M.generate()
if arg_mode then
  local f = assert(io.open(arg_mode, "wb"))
  f:write(text)
  f:close()
else
  io.write(text)
end
