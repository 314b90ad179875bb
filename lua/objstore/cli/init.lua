--- The `objstore` command line: main(argv) -> exit code. Each command is
-- a function over the library (objstore.new, the client's operations and
-- transfers, objstore.sync / objstore.check); output and progress go
-- through objstore.cli.progress. See objstore.cli.help for the commands.
local objstore = require "objstore"
local args = require "objstore.cli.args"
local help = require "objstore.cli.help"
local progress_mod = require "objstore.cli.progress"
local cjson = require "cjson"
local lfs = require "lfs"

local ipairs, pairs, tostring, type, pcall = ipairs, pairs, tostring, type, pcall
local format = string.format

local _M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MAX_DELETE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_M.EXIT = { ok = EXIT_OK, failed = EXIT_FAILED, usage = EXIT_USAGE, max_delete = EXIT_MAX_DELETE,
  interrupted = EXIT_INTERRUPTED }

local usage = args.usage

--- The run's context: options, output, progress, failure count.
local function context(opts, out, err)
  local mode = "plain"
  if opts.quiet then
    mode = "quiet"
  elseif opts.json then
    mode = "json"
  elseif progress_mod.is_tty(2) then
    mode = "tty"
  end
  local ctx = { opts = opts, out = out, err = err, failures = 0, clients = {} }
  ctx.progress = progress_mod.new{ mode = mode, out = out, err = err }
  function ctx.json(t)
    out:write(cjson.encode(t), "\n")
    out:flush()
  end
  function ctx.fail(what, e)
    ctx.failures = ctx.failures + 1
    local code = type(e) == "table" and e.code or "Error"
    local msg = type(e) == "table" and e.message or tostring(e)
    err:write(format("objstore: %s: %s: %s\n", what, tostring(code), tostring(msg)))
    if opts.json then ctx.json{ type = "error", key = what, code = code, message = msg } end
  end
  function ctx.say(line)
    if not opts.quiet and not opts.json then out:write(line, "\n") end
  end
  return ctx
end

--- The client for a remote location (one per provider).
local function client(ctx, loc)
  local c = ctx.clients[loc.provider]
  if c then return c end
  local o = ctx.opts
  local ok, res = pcall(objstore.new, { provider = loc.provider, profile = o.profile, endpoint = o.endpoint,
    region = o.region })
  if not ok then usage(tostring(res):gsub("^objstore%.client%.new: ", "")) end
  ctx.clients[loc.provider] = res
  return res
end

local function remote_arg(pos, i, what)
  local s = pos[i]
  if not s then usage(what) end
  local loc = args.location(s)
  if loc.kind ~= "remote" then usage("'" .. s .. "' is not an s3:// or oss:// URL") end
  return loc
end

local function basename(p) return (p:gsub("/+$", ""):match("([^/]+)$")) or p end

local function sync_side(ctx, loc)
  if loc.kind == "local" then return loc.path end
  if loc.kind == "std" then usage("'-' is only for cp of one object") end
  return { bucket = loc.bucket, prefix = loc.key, client = client(ctx, loc) }
end

local C = {}

function C.ls(ctx, pos)
  args.want(pos, 0, 1, "ls takes at most one URL")
  if #pos == 0 then
    local c = client(ctx, { provider = "s3" })
    local res, err = c:list_buckets()
    if not res then return ctx.fail("ListBuckets", err) end
    for _, b in ipairs(res.buckets) do
      if ctx.opts.json then ctx.json{ bucket = b.name, creation_date = b.creation_date } else
        ctx.out:write(format("%s  %s\n", tostring(b.creation_date), b.name))
      end
    end
    return
  end
  local loc = remote_arg(pos, 1, "ls needs a URL")
  local c = client(ctx, loc)
  local it = c:list_objects_iter(loc.bucket, { prefix = loc.key ~= "" and loc.key or nil,
    delimiter = not ctx.opts.r and "/" or nil })
  for o, err in it do
    if not o then return ctx.fail(loc.url, err) end
    if ctx.opts.json then
      ctx.json(o.is_prefix and { prefix = o.prefix } or { key = o.key, size = tonumber(o.size), etag = o.etag,
        last_modified = o.last_modified, storage_class = o.storage_class })
    elseif o.is_prefix then
      ctx.out:write(format("%31s PRE %s\n", "", o.prefix))
    else
      ctx.out:write(format("%s %10s %s\n", tostring(o.last_modified), tostring(o.size), o.key))
    end
  end
end

local SYNC_FLAGS = { r = "bool", recursive = "bool", include = "filter", exclude = "filter", delete = "bool",
  ["dry-run"] = "bool", checksum = "bool", ["size-only"] = "bool", ["max-delete"] = "number", force = "bool",
  backup = "string", ["delete-excluded"] = "bool", ["no-state"] = "bool", ["state-file"] = "string",
  ["modify-window"] = "number",
  bwlimit = "size", ["follow-symlinks"] = "bool", ["content-type"] = "string", expires = "number",
  method = "string" }

--- Runs objstore.sync (or check) with the command's options, printing as it goes.
local function run_sync(ctx, src, dst, extra)
  local o = ctx.opts
  local sopts = { delete = o.delete or nil, dry_run = o["dry-run"] or nil, max_delete = o["max-delete"],
    force = o.force or nil, backup = o.backup, delete_excluded = o["delete-excluded"] or nil,
    state = (o["no-state"] and false) or o["state-file"], modify_window = o["modify-window"], bwlimit = o.bwlimit,
    follow_symlinks = o["follow-symlinks"] or nil, content_type = o["content-type"], concurrency = o.concurrency,
    part_size = o["part-size"], filters = #o.filters > 0 and o.filters or nil, actions = false,
    compare = (o.checksum and "checksum") or (o["size-only"] and "size_only") or nil }
  for k, v in pairs(extra or {}) do sopts[k] = v end
  local dry = sopts.dry_run
  sopts.on_action = function(a)
    if a.action:find("_failed$") then
      ctx.fail(a.key, a.error)
    else
      if o.json then
        ctx.json{ type = "action", action = a.action, key = a.key, reason = a.reason, size = a.size }
      elseif dry and a.action ~= "skip" then
        ctx.out:write(format("(dry run) %s %s (%s)\n", a.action, a.key, tostring(a.reason)))
      end
      if a.action ~= "skip" or not dry then ctx.progress.file(a.action ~= "skip" and not dry and a.size or 0) end
    end
  end
  sopts.on_notice = function(msg)
    if not o.quiet then ctx.err:write("objstore: notice: ", msg, "\n") end
  end
  local res, err = objstore.sync(ctx.sync_client, src, dst, sopts)
  local r = res or (err and err.result)
  ctx.progress.finish(r and (r.transferred + r.skipped + r.failed + r.deleted) or nil)
  if r then
    if o.json then
      ctx.json{ type = "summary", transferred = r.transferred, skipped = r.skipped, deleted = r.deleted,
        failed = r.failed, bytes = r.bytes, dry_run = dry or nil }
    elseif not o.quiet then
      ctx.err:write(format("%stransferred %d, skipped %d, deleted %d, failed %d, %s\n", dry and "(dry run) " or "",
        r.transferred, r.skipped, r.deleted, r.failed, progress_mod.human(r.bytes)))
    end
  end
  if err and (err.code == "MaxDeleteExceeded" or err.code == "SourceMissing") then
    ctx.fail("delete", err)
    if err.code == "MaxDeleteExceeded" then ctx.exit = EXIT_MAX_DELETE end
  elseif err and not r then
    ctx.fail("sync", err)
  elseif err and ctx.failures == 0 then
    ctx.fail("sync", err)
  end
  return res, r
end

local function sides(pos, what)
  args.want(pos, 2, 2, what .. " needs SRC and DST")
  local s, d = args.location(pos[1]), args.location(pos[2])
  if s.kind == "local" and d.kind == "local" then usage(what .. ": one side must be an s3:// or oss:// URL") end
  return s, d
end

function C.sync(ctx, pos)
  local s, d = sides(pos, "sync")
  local src, dst = sync_side(ctx, s), sync_side(ctx, d)
  ctx.sync_client = (type(dst) == "table" and dst.client) or src.client
  if s.kind == "local" and lfs.attributes(s.path, "mode") == "file" then usage("sync: SRC must be a directory") end
  run_sync(ctx, src, dst)
end

--- cp of one file/object.
local function copy_one(ctx, s, d)
  local o = ctx.opts
  local topts = { part_size = o["part-size"], concurrency = o.concurrency }
  local function on_progress(done, total) ctx.progress.bytes(done, total) end
  if (s.kind == "local" or s.kind == "std") and d.kind == "remote" then
    local c = client(ctx, d)
    local key = d.key
    if s.kind == "std" then
      if key == "" or key:sub(-1) == "/" then usage("cp -: the destination needs a key") end
      topts.progress = on_progress
      local res, err = c:upload_stream(d.bucket, key, io.stdin, topts)
      if not res then return ctx.fail(d.url, err) end
      ctx.progress.file(0)
      return res
    end
    local attr = lfs.attributes(s.path)
    if not attr then return ctx.fail(s.path, { code = "LocalFileError", message = "no such file" }) end
    if attr.mode == "directory" then usage("cp: '" .. s.path .. "' is a directory (use -r)") end
    if key == "" or key:sub(-1) == "/" then key = key .. basename(s.path) end
    topts.metadata = { mtime = tostring(math.floor(attr.modification)) }
    topts.progress = on_progress
    topts.content_type = o["content-type"]
    local res, err = c:upload_file(d.bucket, key, s.path, topts)
    if not res then return ctx.fail(s.path, err) end
    ctx.progress.file(attr.size)
    ctx.say(format("upload: %s to s3://%s/%s", s.path, d.bucket, key))
    return res
  elseif s.kind == "remote" and (d.kind == "local" or d.kind == "std") then
    local c = client(ctx, s)
    if s.key == "" then usage("cp: the source needs a key (or -r)") end
    if d.kind == "std" then return C.cat(ctx, { s.url }) end
    local path = d.path
    if path:sub(-1) == "/" or lfs.attributes(path, "mode") == "directory" then
      path = path:gsub("/+$", "") .. "/" .. basename(s.key)
    end
    topts.progress = on_progress
    local res, err = c:download_file(s.bucket, s.key, path, topts)
    if not res then return ctx.fail(s.url, err) end
    local head = c:head_object(s.bucket, s.key)
    local mt = head and tonumber(head.metadata.mtime)
    if mt then lfs.touch(path, math.floor(mt), math.floor(mt)) end
    ctx.progress.file(res.size)
    ctx.say(format("download: %s to %s", s.url, path))
    return res
  elseif s.kind == "remote" and d.kind == "remote" then
    if s.provider ~= d.provider then usage("cp: copying between s3:// and oss:// needs a local step") end
    local c = client(ctx, s)
    local key = d.key
    if key == "" or key:sub(-1) == "/" then key = key .. basename(s.key) end
    local res, err = c:copy_large(s.bucket, s.key, d.bucket, key, { part_size = o["part-size"] })
    if not res then return ctx.fail(s.url, err) end
    ctx.progress.file(0)
    ctx.say(format("copy: %s to %s://%s/%s", s.url, d.provider, d.bucket, key))
    return res
  end
  usage("cp: one side must be an s3:// or oss:// URL")
end

function C.cp(ctx, pos)
  local s, d = sides(pos, "cp")
  if ctx.opts.r or ctx.opts.recursive then
    local src, dst = sync_side(ctx, s), sync_side(ctx, d)
    ctx.sync_client = (type(dst) == "table" and dst.client) or src.client
    return run_sync(ctx, src, dst)
  end
  local res = copy_one(ctx, s, d)
  ctx.progress.finish(res and 1 or 0)
  return res
end

function C.mv(ctx, pos)
  local s, d = sides(pos, "mv")
  if ctx.opts.r or ctx.opts.recursive then
    local src, dst = sync_side(ctx, s), sync_side(ctx, d)
    ctx.sync_client = (type(dst) == "table" and dst.client) or src.client
    local res = run_sync(ctx, src, dst, { actions = true })
    if not res then return end
    for _, a in ipairs(res.actions) do
      if s.kind == "local" then
        os.remove(s.path .. "/" .. a.key)
      else
        local c = client(ctx, s)
        local ok, err = c:delete_objects(s.bucket, { src.prefix .. a.key }, { quiet = true })
        if not ok or #ok.errors > 0 then ctx.fail(a.key, err or ok.errors[1]) end
      end
    end
    return
  end
  local res = copy_one(ctx, s, d)
  if not res then return end
  if s.kind == "local" then
    os.remove(s.path)
  else
    local ok, err = client(ctx, s):delete_object(s.bucket, s.key)
    if not ok then ctx.fail(s.url, err) end
  end
end

function C.rm(ctx, pos)
  args.want(pos, 1, 1, "rm needs one URL")
  local loc = remote_arg(pos, 1, "rm needs one URL")
  local c = client(ctx, loc)
  if not (ctx.opts.r or ctx.opts.recursive) then
    if loc.key == "" then usage("rm: give a key, or -r for a prefix") end
    if ctx.opts["dry-run"] then return ctx.say("(dry run) delete " .. loc.url) end
    local ok, err = c:delete_object(loc.bucket, loc.key)
    if not ok then return ctx.fail(loc.url, err) end
    return ctx.say("delete: " .. loc.url)
  end
  local prefix = loc.key ~= "" and (loc.key:gsub("/*$", "/")) or ""
  local keep = require("objstore.sync.filter").new(ctx.opts.filters)
  local batch = {}
  local function flush()
    if #batch == 0 then return end
    local out = c:delete_objects(loc.bucket, batch, { quiet = true })
    for _, e in ipairs(out.errors) do ctx.fail(e.key, e.error or e) end
    ctx.progress.state.files = ctx.progress.state.files + #batch - #out.errors
    batch = {}
  end
  for o, err in c:list_objects_iter(loc.bucket, { prefix = prefix ~= "" and prefix or nil }) do
    if not o then return ctx.fail(loc.url, err) end
    if keep(o.key:sub(#prefix + 1)) then
      if ctx.opts["dry-run"] then
        ctx.say("(dry run) delete " .. o.key)
      else
        batch[#batch + 1] = o.key
        if #batch == 1000 then flush() end
      end
    end
  end
  flush()
  ctx.progress.finish()
end

function C.cat(ctx, pos)
  args.want(pos, 1, 1, "cat needs one URL")
  local loc = remote_arg(pos, 1, "cat needs one URL")
  if loc.key == "" then usage("cat: the URL needs a key") end
  local c = client(ctx, loc)
  local out = ctx.out
  local res, err = c:get_object(loc.bucket, loc.key, { sink = function(chunk) out:write(chunk) end })
  out:flush()
  if not res then return ctx.fail(loc.url, err) end
  return res
end

function C.stat(ctx, pos)
  args.want(pos, 1, 1, "stat needs one URL")
  local loc = remote_arg(pos, 1, "stat needs one URL")
  if loc.key == "" then usage("stat: the URL needs a key") end
  local h, err = client(ctx, loc):head_object(loc.bucket, loc.key)
  if not h then return ctx.fail(loc.url, err) end
  local t = { key = loc.key, size = h.content_length, etag = h.etag, last_modified = h.last_modified,
    content_type = h.content_type, storage_class = h.storage_class, version_id = h.version_id, metadata = h.metadata }
  if ctx.opts.json then return ctx.json(t) end
  for _, k in ipairs{ "key", "size", "etag", "last_modified", "content_type", "storage_class", "version_id" } do
    if t[k] ~= nil then ctx.out:write(format("%-14s %s\n", k, tostring(t[k]))) end
  end
  local names = {}
  for k in pairs(h.metadata or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do ctx.out:write(format("%-14s %s\n", "meta:" .. k, h.metadata[k])) end
end

function C.mb(ctx, pos)
  args.want(pos, 1, 1, "mb needs one URL")
  local loc = remote_arg(pos, 1, "mb needs one URL")
  local ok, err = client(ctx, loc):create_bucket(loc.bucket)
  if not ok then return ctx.fail(loc.url, err) end
  ctx.say("make_bucket: " .. loc.bucket)
end

function C.rb(ctx, pos)
  args.want(pos, 1, 1, "rb needs one URL")
  local loc = remote_arg(pos, 1, "rb needs one URL")
  local c = client(ctx, loc)
  if ctx.opts.force then
    ctx.opts.r = true
    C.rm(ctx, { loc.provider .. "://" .. loc.bucket })
    local ups = c:list_multipart_uploads(loc.bucket)
    for _, u in ipairs(ups and ups.uploads or {}) do c:abort_multipart_upload(loc.bucket, u.key, u.upload_id) end
  end
  local ok, err = c:delete_bucket(loc.bucket)
  if not ok then return ctx.fail(loc.url, err) end
  ctx.say("remove_bucket: " .. loc.bucket)
end

function C.presign(ctx, pos)
  args.want(pos, 1, 1, "presign needs one URL")
  local loc = remote_arg(pos, 1, "presign needs one URL")
  if loc.key == "" then usage("presign: the URL needs a key") end
  local method = (ctx.opts.method or "GET"):upper()
  if method ~= "GET" and method ~= "PUT" and method ~= "HEAD" and method ~= "DELETE" then
    usage("presign: --method must be GET, PUT, HEAD or DELETE")
  end
  local url, err = client(ctx, loc):presign(method, loc.bucket, loc.key, { expires = ctx.opts.expires or 3600 })
  if not url then return ctx.fail(loc.url, err) end
  if ctx.opts.json then return ctx.json{ url = url } end
  ctx.out:write(url, "\n")
end

function C.du(ctx, pos)
  args.want(pos, 1, 1, "du needs one URL")
  local loc = remote_arg(pos, 1, "du needs one URL")
  local n, bytes = 0, 0
  for o, err in client(ctx, loc):list_objects_iter(loc.bucket, { prefix = loc.key ~= "" and loc.key or nil }) do
    if not o then return ctx.fail(loc.url, err) end
    n, bytes = n + 1, bytes + (tonumber(o.size) or 0)
  end
  if ctx.opts.json then return ctx.json{ objects = n, bytes = bytes } end
  ctx.out:write(format("%d bytes (%s) in %d objects  %s\n", bytes, progress_mod.human(bytes), n, loc.url))
end

function C.check(ctx, pos)
  local s, d = sides(pos, "check")
  local src, dst = sync_side(ctx, s), sync_side(ctx, d)
  local c = (type(dst) == "table" and dst.client) or src.client
  local report, err = objstore.check(c, src, dst, { compare = ctx.opts.checksum and "checksum" or nil,
    filters = #ctx.opts.filters > 0 and ctx.opts.filters or nil })
  if not report then return ctx.fail("check", err) end
  local function list(kind, keys)
    for _, k in ipairs(keys) do
      if ctx.opts.json then ctx.json{ type = kind, key = k } else ctx.out:write(kind, " ", k, "\n") end
    end
  end
  list("differs", report.differ)
  list("missing", report.missing)
  list("extra", report.extra)
  for _, e in ipairs(report.errors) do ctx.fail(e.key, e.error) end
  if ctx.opts.json then
    ctx.json{ type = "summary", matched = report.matched, differ = #report.differ, missing = #report.missing,
      extra = #report.extra, ok = report.ok }
  end
  if not report.ok then ctx.failures = ctx.failures + (#report.errors == 0 and 1 or 0) end
end

--- main(argv, out, err) -> exit code
function _M.main(argv, out, err)
  out, err = out or io.stdout, err or io.stderr
  -- SIGINT/SIGTERM raise "interrupted (SIGINT|SIGTERM)" where Lua runs next
  -- (transfers stop within ~100 ms), so downloads remove their part files
  -- and uploads abort their multipart uploads before the exit: 130 / 143,
  -- as a shell reports a death by those signals.
  local signal = require("objstore.core").signal
  signal.trap()
  local function interrupted()
    err:write("objstore: interrupted\n")
    return signal.pending() == "TERM" and 143 or EXIT_INTERRUPTED
  end
  -- Global options may come before the command: `objstore --endpoint URL ls`.
  local i = 1
  while argv[i] and argv[i]:sub(1, 1) == "-" and argv[i] ~= "-" and argv[i] ~= "--help" and argv[i] ~= "-h" do
    local name = argv[i]:match("^%-%-?([^=]+)")
    local kind = args.GLOBAL[name]
    if kind and kind ~= "bool" and not argv[i]:find("=", 1, true) then i = i + 1 end
    i = i + 1
  end
  local cmd = argv[i]
  if i > 1 and cmd then
    local reordered = { cmd }
    for j = 1, #argv do if j ~= i then reordered[#reordered + 1] = argv[j] end end
    argv = reordered
  end
  local ok, res = pcall(function()
    if cmd == nil or cmd == "--help" or cmd == "-h" or cmd == "help" then
      out:write(help.main)
      return cmd == nil and EXIT_USAGE or EXIT_OK
    end
    if not C[cmd] then usage("unknown command '" .. tostring(cmd) .. "' (objstore --help lists them)") end
    local opts, pos = args.parse(argv, 2, SYNC_FLAGS)
    if opts.help then
      out:write(help[cmd])
      return EXIT_OK
    end
    local ctx = context(opts, out, err)
    C[cmd](ctx, pos)
    if ctx.exit then return ctx.exit end
    return ctx.failures > 0 and EXIT_FAILED or EXIT_OK
  end)
  if ok then
    -- An interrupt reported as a failed file still ends the command as one.
    if signal.pending() then return interrupted() end
    return res
  end
  if args.is_usage(res) then
    err:write("objstore: ", res.usage, "\n")
    err:write("Try 'objstore ", (cmd and help[cmd]) and (cmd .. " ") or "", "--help'.\n")
    return EXIT_USAGE
  end
  if tostring(res):find("interrupted", 1, true) then return interrupted() end
  err:write("objstore: ", tostring(res), "\n")
  return EXIT_FAILED
end

return _M
