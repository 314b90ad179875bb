--- The `objstore` command line: main(argv) -> exit code. Each command is
-- a function over the library (objstore.new, the client's operations and
-- transfers, objstore.sync / objstore.check); output and progress go
-- through objstore.cli.progress. See objstore.cli.help for the commands.
-- Standard streams closed by the caller (`objstore ... >&-`): their
-- descriptors would be reused by the first file or socket opened (a
-- download's temporary file, an HTTP connection), and stdout's bytes would
-- land there. Each closed one is taken by /dev/null before anything else
-- is opened, and remembered: a write to a closed stdout fails (exit 1),
-- a closed stdin is no input.
local closed_std, std_holders = {}, {}
do
  local EBADF = 9
  local function closed(f)
    local ok, _, code = f:seek("cur")
    return not ok and code == EBADF
  end
  for _ = 1, 3 do
    local any = false
    for name, f in pairs{ stdin = io.stdin, stdout = io.stdout, stderr = io.stderr } do
      if closed(f) then
        closed_std[name] = true
        any = true
      end
    end
    if not any then break end
    std_holders[#std_holders + 1] = io.open("/dev/null", "r+")
  end
end

local objstore = require "objstore"
local args = require "objstore.cli.args"
local help = require "objstore.cli.help"
local progress_mod = require "objstore.cli.progress"
local cjson = require "cjson"
local lfs = require "lfs"
local log = require "objstore.log"
local core = require "objstore.core"
local dialects = require "objstore.engine.dialect"
local sync_state = require "objstore.sync.state"
local sync_names = require "objstore.sync.names"
local sync_filter = require "objstore.sync.filter"

local ipairs, pairs, tostring, type, pcall = ipairs, pairs, tostring, type, pcall
local format = string.format

--- Text for a terminal: names and server messages may hold control
-- characters (a forged line, escape sequences); --json output stays exact.
local function safe(v) return log.escape_control(tostring(v)) end

local _M = {}
-- Held for the life of the process (a collected handle would free its descriptor).
_M.std_holders = std_holders

local EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MAX_DELETE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_M.EXIT = { ok = EXIT_OK, failed = EXIT_FAILED, usage = EXIT_USAGE, max_delete = EXIT_MAX_DELETE,
  interrupted = EXIT_INTERRUPTED }

local usage = args.usage

local OUTPUT_ERROR = "cannot write to standard output: "

--- stdout whose every failed write (a full disk, /dev/full, a closed
-- file) raises { output = message }: the command reports it and exits 1,
-- never 0 with truncated output. try_write reports instead of raising, for
-- sinks called from inside a transfer.
local function checked_output(stream)
  local w = {}
  if stream == io.stdout and closed_std.stdout then
    -- Closed by the caller: every write is one that failed.
    stream = { write = function() return nil, "Bad file descriptor" end, flush = function() return true end }
  end
  -- Raised as a string: a table raised inside a transfer's callbacks
  -- reaches main as "on_done: error object is not a string".
  local function fail(e) error(OUTPUT_ERROR .. tostring(e), 0) end
  function w.write(self, ...)
    local ok, e = stream:write(...)
    if not ok then fail(e) end
    return self
  end
  function w.flush(self)
    local ok, e = stream:flush()
    if not ok then fail(e) end
    return self
  end
  function w.try_write(_, chunk)
    local ok, e = stream:write(chunk)
    if not ok then return nil, "cannot write to standard output: " .. tostring(e) end
    return true
  end
  return w
end

--- Text JSON can carry: JSON is UTF-8, and a name that is not (a local
-- file name, a server's message) made a line no JSON parser reads. Each
-- byte that is not part of a valid sequence becomes the text \xFF (as the
-- terminal output shows it); valid text is unchanged.
local utf8_valid = require("objstore.core").encode.utf8_valid
local function json_text(v)
  if utf8_valid(v) then return v end
  local out, i, n = {}, 1, #v
  while i <= n do
    local b = v:byte(i)
    local len = (b < 0x80 and 1) or (b >= 0xC2 and b <= 0xDF and 2) or (b >= 0xE0 and b <= 0xEF and 3)
      or (b >= 0xF0 and b <= 0xF4 and 4) or 0
    if len > 0 and i + len - 1 <= n and utf8_valid(v:sub(i, i + len - 1)) then
      out[#out + 1] = v:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = format("\\x%02X", b)
      i = i + 1
    end
  end
  return table.concat(out)
end

local function json_clean(t, depth)
  if type(t) == "string" then return json_text(t) end
  if type(t) ~= "table" or depth > 8 then return t end
  local c = {}
  for k, v in pairs(t) do c[json_clean(k, depth + 1)] = json_clean(v, depth + 1) end
  return c
end

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
  local ctx = { opts = opts, out = out, err = err, failures = 0, clients = {}, dry = opts["dry-run"] or nil }
  -- A dry run moves no byte: its plan is the output, no progress.
  ctx.progress = progress_mod.new{ mode = (ctx.dry and mode ~= "json") and "quiet" or mode, out = out, err = err }
  local clear = ctx.progress.clear
  function ctx.json(t)
    out:write(cjson.encode(json_clean(t, 0)), "\n")
    out:flush()
  end
  function ctx.fail(what, e)
    ctx.failures = ctx.failures + 1
    local code = type(e) == "table" and e.code or "Error"
    local msg = type(e) == "table" and e.message or tostring(e)
    clear()
    err:write(format("objstore: %s: %s: %s\n", safe(what), safe(code), safe(msg)))
    if opts.json then ctx.json{ type = "error", key = what, code = code, message = msg } end
  end
  function ctx.say(line)
    if not opts.quiet and not opts.json then
      clear()
      out:write(safe(line), "\n")
    end
  end
  --- One line per file acted on: with -v as text, with --json always.
  function ctx.acted(t, line)
    if opts.json then
      t.type = "action"
      ctx.json(t)
    elseif opts.verbose and line then
      ctx.say(line)
    end
  end
  --- A notice on stderr (not with -q).
  function ctx.notice(msg)
    if not opts.quiet then
      clear()
      err:write("objstore: notice: ", safe(msg), "\n")
    end
  end
  --- What a dry run would do: said, never done.
  function ctx.would(line)
    if opts.json then
      ctx.json{ type = "dry_run", action = line }
    elseif not opts.quiet then
      clear()
      out:write("(dry run) ", safe(line), "\n")
    end
  end
  return ctx
end

--- The client for a remote location (one per provider).
local function client(ctx, loc)
  local c = ctx.clients[loc.provider]
  if c then return c end
  local o = ctx.opts
  -- OSS signs with V4 unless asked for V1 (its dialect's signature_env
  -- names the variable that also asks); S3 has only V4.
  local signature = o.signature
  local d = dialects.get(loc.provider)
  if d.signature_env then
    signature = signature or os.getenv(d.signature_env)
  elseif signature and not d.signatures[signature] then
    usage("--signature " .. signature .. ": s3:// requests are signed with v4 only")
  end
  -- The network: --retries (or AWS_MAX_ATTEMPTS, which counts the first
  -- attempt too), --ca-bundle (or AWS_CA_BUNDLE), --no-verify-ssl; a retry
  -- is a notice on stderr.
  local attempts = o.retries and o.retries + 1
  if not attempts and os.getenv("AWS_MAX_ATTEMPTS") then
    attempts = tonumber(os.getenv("AWS_MAX_ATTEMPTS"))
    if not attempts or attempts % 1 ~= 0 or attempts < 1 or attempts > 101 then
      usage("AWS_MAX_ATTEMPTS must be a whole number from 1 to 101, got '" .. os.getenv("AWS_MAX_ATTEMPTS") .. "'")
    end
  end
  local ca = o["ca-bundle"] or os.getenv("AWS_CA_BUNDLE")
  if ca == "" then ca = nil end
  if o["ca-bundle"] then
    local f = lfs.attributes(ca, "mode") == "file" and io.open(ca, "r")
    if not f then usage("--ca-bundle " .. ca .. ": no such readable file") end
    f:close()
  end
  local tls
  if ca or o["no-verify-ssl"] then tls = { ca_file = ca, insecure = o["no-verify-ssl"] or nil } end
  local hooks = { on_retry = function(e)
    local where = e.bucket and (" " .. tostring(e.bucket) .. (e.key and ("/" .. tostring(e.key)) or "")) or ""
    ctx.notice(format("%s%s: %s; retrying in %.1f s (attempt %s failed)", tostring(e.op), where,
      tostring(e.reason), tonumber(e.delay) or 0, tostring(e.attempt)))
  end }
  local ok, res = pcall(objstore.new, { provider = loc.provider, profile = o.profile, endpoint = o.endpoint,
    region = o.region, signature = signature, timeout = o.timeout, connect_timeout = o["connect-timeout"],
    retry = attempts and { max_attempts = attempts } or nil, tls = tls, hooks = hooks })
  if not ok then usage((tostring(res):gsub("^.-objstore%.client%.new: ", ""))) end
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
        ctx.out:write(format("%s  %s\n", safe(b.creation_date), safe(b.name)))
      end
    end
    return
  end
  local loc = remote_arg(pos, 1, "ls needs a URL")
  local c = client(ctx, loc)
  local o_ = ctx.opts
  local n, bytes = 0, 0
  local function size_text(v)
    if o_["human-readable"] and tonumber(v) then return progress_mod.human(tonumber(v)) end
    return tostring(v)
  end
  local function summarize()
    if not o_.summarize then return end
    if o_.json then return ctx.json{ type = "summary", objects = n, bytes = bytes } end
    ctx.out:write(format("\nTotal Objects: %d\n   Total Size: %s\n", n,
      o_["human-readable"] and progress_mod.human(bytes) or tostring(bytes)))
  end
  if o_.versions then
    -- Every version and delete marker, page by page (key order; per key as the store gives them).
    -- As ls: one level unless -r (it was always every level, -r accepted
    -- and meaningless), and only what lies below the prefix, whatever the
    -- store answered.
    local key_marker, vid_marker
    local prefix = loc.key
    repeat
      local page, err = c:list_object_versions(loc.bucket, { prefix = prefix ~= "" and prefix or nil,
        delimiter = not o_.r and "/" or nil, key_marker = key_marker, version_id_marker = vid_marker })
      if not page then return ctx.fail(loc.url, err) end
      for _, p in ipairs(page.common_prefixes or {}) do
        local pre = type(p) == "table" and p.prefix or p
        if type(pre) == "string" and pre:sub(1, #prefix) == prefix then
          if o_.json then ctx.json{ prefix = pre } else ctx.out:write(format("%31s PRE %s\n", "", safe(pre))) end
        end
      end
      local all = {}
      local function below(v) return type(v.key) == "string" and v.key:sub(1, #prefix) == prefix end
      for _, v in ipairs(page.versions) do if below(v) then all[#all + 1] = v end end
      for _, m in ipairs(page.delete_markers) do
        if below(m) then
          m.delete_marker = true
          all[#all + 1] = m
        end
      end
      table.sort(all, function(a, b)
        if a.key ~= b.key then return a.key < b.key end
        return tostring(a.last_modified) > tostring(b.last_modified)
      end)
      for _, v in ipairs(all) do
        if not v.delete_marker then n, bytes = n + 1, bytes + (tonumber(v.size) or 0) end
        if o_.json then
          ctx.json{ key = v.key, version_id = v.version_id, is_latest = v.is_latest and true or false,
            delete_marker = v.delete_marker or nil, size = tonumber(v.size), etag = v.etag,
            last_modified = v.last_modified }
        else
          ctx.out:write(format("%s %10s %s  %s%s%s\n", safe(v.last_modified),
            v.delete_marker and "-" or size_text(v.size), safe(v.key), safe(v.version_id),
            v.is_latest and "  (latest)" or "", v.delete_marker and "  (delete marker)" or ""))
        end
      end
      key_marker, vid_marker = page.next_key_marker, page.next_version_id_marker
      if page.is_truncated and not key_marker then
        return ctx.fail(loc.url, { code = "TruncatedListing",
          message = "the listing is truncated but gives no marker" })
      end
    until not page.is_truncated
    return summarize()
  end
  local it = c:list_objects_iter(loc.bucket, { prefix = loc.key ~= "" and loc.key or nil,
    delimiter = not o_.r and "/" or nil })
  for o, err in it do
    if not o then return ctx.fail(loc.url, err) end
    if not o.is_prefix then n, bytes = n + 1, bytes + (tonumber(o.size) or 0) end
    if o_.json then
      ctx.json(o.is_prefix and { prefix = o.prefix } or { key = o.key, size = tonumber(o.size), etag = o.etag,
        last_modified = o.last_modified, storage_class = o.storage_class })
    elseif o.is_prefix then
      ctx.out:write(format("%31s PRE %s\n", "", safe(o.prefix)))
    else
      ctx.out:write(format("%s %10s %s\n", safe(o.last_modified), size_text(o.size), safe(o.key)))
    end
  end
  summarize()
end

local function local_error(message)
  return { code = "LocalFileError", message = message }
end

--- --backup: a directory for a local destination; for a remote one a
-- prefix of the destination bucket or an s3:// / oss:// URL on its store.
local function backup_of(value, d)
  if not value then return nil end
  if not value:find("^%a[%w+.-]*://") then return value end
  local b = args.location(value)
  if d.kind ~= "remote" or b.provider ~= d.provider then
    usage("--backup " .. value .. ": a URL backup must be on the destination's store")
  end
  return { bucket = b.bucket, prefix = b.key }
end

--- The flags of the comparison and of the local walk, where they would do
-- nothing: between two remote trees there is no walk and no sync state; a
-- modification window means nothing to --checksum or --size-only; a move
-- compares content wherever it can (--size-only, --modify-window unused).
local function check_compare_flags(o, s, d, move)
  if s.kind == "remote" and d.kind == "remote" then
    for _, f in ipairs{ "state-file", "no-state", "follow-symlinks" } do
      if o[f] then usage("--" .. f .. " applies when one side is a local directory") end
    end
  end
  if o["modify-window"] and (o.checksum or o["size-only"]) then
    usage("--modify-window applies to the size and modification time comparison (not with --checksum or --size-only)")
  end
  if move then
    for _, f in ipairs{ "size-only", "modify-window" } do
      if o[f] then usage("--" .. f .. ": a move compares content wherever it can, never size or times alone") end
    end
  end
end

--- The SSE-C key of --sse-c-key file:PATH or env:NAME (32 bytes, raw or
-- base64): never the key itself on the command line, where `ps` shows it.
local function sse_c_key(value)
  if not value then return nil end
  local how, what = value:match("^(%a+):(.+)$")
  local text
  if how == "file" then
    local f = io.open(what, "rb")
    if not f then usage("--sse-c-key file:" .. what .. ": cannot read the file") end
    -- Bounded (a key is 32 or 44 bytes; file:/dev/zero read forever), and a
    -- directory opens but reads nil (a Lua error before).
    text = f:read(1024)
    f:close()
    if not text then usage("--sse-c-key file:" .. what .. ": cannot read the file") end
  elseif how == "env" then
    text = os.getenv(what)
    if not text then usage("--sse-c-key env:" .. what .. ": the variable is not set") end
  else
    usage("--sse-c-key needs file:PATH or env:NAME (never the key itself on the command line)")
  end
  if #text == 32 then return text end
  local trimmed = text:gsub("%s+$", "")
  if #trimmed == 44 then
    local ok, raw = pcall(core.encode.base64_decode, trimmed)
    if ok and raw and #raw == 32 then return raw end
  end
  usage("--sse-c-key: the key must be 32 bytes, raw or in base64")
end

--- What an upload stores with the object, as the client's options.
local function stored_opts(o)
  if o["sse-kms-key-id"] and o.sse ~= "aws:kms" and o.sse ~= "KMS" then
    usage("--sse-kms-key-id needs --sse aws:kms (KMS for oss://)")
  end
  if o.sse and o["sse-c-key"] then usage("--sse and --sse-c-key exclude each other") end
  return { content_type = o["content-type"], cache_control = o["cache-control"],
    content_disposition = o["content-disposition"], metadata = o.metadata, storage_class = o["storage-class"],
    acl = o.acl, sse = o.sse, sse_kms_key_id = o["sse-kms-key-id"], sse_customer_key = sse_c_key(o["sse-c-key"]) }
end

--- The upload options given (names), for the checks of where they apply.
local function upload_flags(o, but)
  local given = {}
  for _, f in ipairs(args.UPLOAD) do if o[f] and f ~= but then given[#given + 1] = f end end
  return given
end

--- Flags whose meaning depends on the direction or on another flag: given
-- where they would do nothing, they are usage errors.
local function check_sync_flags(o, s, d, move)
  if o.resume then usage("--resume: only a single cp or mv resumes (with -r a file is sent again whole)") end
  for _, f in ipairs{ "max-delete", "force", "backup", "delete-excluded" } do
    if o[f] and not o.delete then usage("--" .. f .. " needs --delete") end
  end
  local up = upload_flags(o)
  if up[1] and s.kind ~= "local" then usage("--" .. up[1] .. " applies to uploads only") end
  if o.bwlimit and s.kind == "remote" and d.kind == "remote" then
    usage("--bwlimit: a server-side copy moves no bytes through this machine")
  end
  if o.checksum and o["size-only"] then usage("--checksum and --size-only exclude each other") end
  check_compare_flags(o, s, d, move)
end

--- Runs objstore.sync (or check) with the command's options, printing as it goes.
local function run_sync(ctx, s, d, extra)
  local o = ctx.opts
  check_sync_flags(o, s, d, extra and extra.move)
  if s.kind == "local" then
    local mode = lfs.attributes(s.path, "mode")
    if mode == nil then
      ctx.fail(s.path, local_error("no such directory"))
      return
    elseif mode ~= "directory" then
      usage(s.path .. " is not a directory")
    end
  end
  local src, dst = sync_side(ctx, s), sync_side(ctx, d)
  local c = (type(dst) == "table" and dst.client) or src.client
  local sopts = { delete = o.delete or nil, dry_run = ctx.dry, max_delete = o["max-delete"],
    force = o.force or nil, backup = backup_of(o.backup, d), delete_excluded = o["delete-excluded"] or nil,
    state = (o["no-state"] and false) or o["state-file"], modify_window = o["modify-window"], bwlimit = o.bwlimit,
    follow_symlinks = o["follow-symlinks"] or nil, concurrency = o.concurrency,
    part_size = o["part-size"], filters = #o.filters > 0 and o.filters or nil, actions = false,
    compare = (o.checksum and "checksum") or (o["size-only"] and "size_only") or nil }
  for k, v in pairs(stored_opts(o)) do sopts[k] = v end
  for k, v in pairs(extra or {}) do sopts[k] = v end
  local dry = sopts.dry_run
  local P = ctx.progress
  local TRANSFER = { upload = true, download = true, copy = true }
  -- Names as the user gave them, for -v: SRC/key to DST/key.
  local function under(loc, key)
    local base = loc.kind == "local" and loc.path or loc.url
    if key == "" then return base end
    return (base:gsub("/+$", "")) .. "/" .. key
  end
  sopts.on_plan = function(a)
    if a then P.plan(1, a.size) else P.planned() end
  end
  sopts.progress = function(key, done) P.moving(key, done) end
  sopts.on_action = function(a)
    local base = a.action:match("^(.-)_failed$")
    if base then
      if TRANSFER[base] then P.file(a.key, 0) end
      ctx.fail(a.key, a.error)
    else
      if TRANSFER[a.action] and not dry then P.file(a.key, a.size) end
      if o.json then
        ctx.json{ type = "action", action = a.action, key = a.key, reason = a.reason, size = a.size,
          dry_run = dry or nil }
      elseif dry and a.action ~= "skip" and not o.quiet then
        ctx.progress.clear()
        ctx.out:write(format("(dry run) %s %s (%s)\n", a.action, safe(a.key), safe(a.reason)))
      elseif o.verbose and a.action ~= "skip" then
        local verb = (a.action == "upload" or a.action == "download" or a.action == "copy") and sopts.move
          and "move" or a.action
        if a.action == "delete" then
          ctx.say(format("delete: %s", under(d, a.key)))
        elseif TRANSFER[a.action] then
          ctx.say(format("%s: %s to %s", verb, under(s, a.key), under(d, a.key)))
        else
          ctx.say(format("%s: %s", a.action, under(d, a.key)))
        end
      end
    end
  end
  sopts.on_notice = ctx.notice
  local res, err = objstore.sync(c, src, dst, sopts)
  local r = res or (err and err.result)
  P.finish()
  if r then
    if o.json then
      ctx.json{ type = "summary", transferred = r.transferred, skipped = r.skipped, deleted = r.deleted,
        failed = r.failed, bytes = r.bytes, unverified = r.unverified, kept = r.kept, dry_run = dry or nil }
    elseif not o.quiet then
      P.clear()
      local extra_counts = ""
      if (r.unverified or 0) > 0 then extra_counts = extra_counts .. format(", not compared %d", r.unverified) end
      if (r.kept or 0) > 0 then extra_counts = extra_counts .. format(", sources kept %d", r.kept) end
      ctx.err:write(format("%stransferred %d, skipped %d, deleted %d, failed %d%s, %s\n", dry and "(dry run) " or "",
        r.transferred, r.skipped, r.deleted, r.failed, extra_counts, progress_mod.human(r.bytes)))
    end
  end
  if err and (err.code == "MaxDeleteExceeded" or err.code == "SourceMissing") then
    ctx.fail("delete", err)
    if err.code == "MaxDeleteExceeded" then ctx.exit = EXIT_MAX_DELETE end
  elseif err and (not r or ctx.failures == 0) then
    ctx.fail(err.code == "SyncFailed" and "sync" or (s.url or s.path or "sync"), err)
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
  run_sync(ctx, s, d)
end

--- mkdir -p of the directory that will hold path; the user's own path in
-- any error.
local function make_parents(path)
  local dir = path:match("^(.*)/[^/]*$")
  if not dir or dir == "" or lfs.attributes(dir, "mode") == "directory" then return true end
  local ok, e = make_parents(dir)
  if not ok then return nil, e end
  local made, merr = lfs.mkdir(dir)
  if not made and lfs.attributes(dir, "mode") ~= "directory" then
    return nil, "cannot create directory " .. dir .. ": " .. tostring(merr)
  end
  return true
end

--- Whether the file at path is still the one `before` (lfs attributes)
-- described: same inode, size, modification and change times. A file
-- written to during its upload is not removed by a move.
local function unchanged(path, before)
  local a = lfs.attributes(path)
  if a == nil and lfs.symlinkattributes(path) == nil then return true end -- gone: nothing left to lose
  return a ~= nil and a.mode == "file" and a.ino == before.ino and a.dev == before.dev and a.size == before.size
    and a.modification == before.modification and a.change == before.change
end

--- The checkpoint of a resumable transfer between a file and an object:
-- under $XDG_STATE_HOME/objstore/transfers/ (~/.local/state/...; mode
-- 0700), never beside the file; nil without --resume; nil, message when the
-- directory cannot be made (a usage error without HOME or XDG_STATE_HOME).
-- Opt-in: an interrupted transfer otherwise leaves nothing behind (its
-- part file removed, its multipart upload aborted).
local function checkpoint_of(ctx, kind, path, url)
  if not ctx.opts.resume then return nil end
  local dir = sync_state.state_dir()
  -- Asked to be resumable and it cannot be: said before anything is sent
  -- (it was silently not resumable, its upload aborted on Ctrl-C).
  if not dir then usage("--resume needs a place for its checkpoint: set HOME or XDG_STATE_HOME") end
  dir = dir:gsub("/sync$", "") .. "/transfers"
  -- Each missing directory made with mode 0700, as the sync state's.
  local missing, d = {}, dir
  while d and d ~= "" and lfs.attributes(d, "mode") ~= "directory" do
    missing[#missing + 1] = d
    d = d:match("^(.*)/[^/]*$")
  end
  for i = #missing, 1, -1 do core.fs.mkdir(missing[i], 448) end
  if lfs.attributes(dir, "mode") ~= "directory" then
    return nil, "--resume: cannot create the checkpoint directory " .. dir
  end
  local h = core.hash.new("sha256")
  h:update(kind .. "\0" .. sync_state.abs_path(path) .. "\0" .. url)
  local name = core.hash.tohex(h:digest())
  h:close()
  return dir .. "/" .. name .. ".cp"
end

--- cp (or mv) of one file/object. Returns the result and whether the copy
-- was verified (the condition for removing a moved source).
local function copy_one(ctx, s, d, verb)
  local o = ctx.opts
  for f in pairs(args.WALK_ONLY) do
    if o[f] then usage("--" .. f .. " needs -r") end
  end
  local up = upload_flags(o, "sse-c-key")
  if up[1] and d.kind ~= "remote" then usage("--" .. up[1] .. " applies to uploads and copies only") end
  if o["sse-c-key"] and s.kind == "remote" and d.kind == "remote" then
    usage("--sse-c-key: not for server-side copies")
  end
  local stored = stored_opts(o)
  if o.bwlimit and (s.kind ~= "local" and d.kind ~= "local") then
    usage("--bwlimit applies to transfers between a file and the store")
  end
  -- Accepted and ignored before: a stream has no checkpoint, and a
  -- server-side copy here keeps none.
  if o.resume and (s.kind ~= "local" and d.kind ~= "local") then
    usage("--resume applies to transfers between a file and the store (not standard input or output, not "
      .. "server-side copies)")
  end
  local topts = { part_size = o["part-size"], concurrency = o.concurrency, bwlimit = o.bwlimit }
  local P = ctx.progress
  -- The one file: its size is the total as soon as it is known.
  local function planned(size)
    if size and not P.state.final then
      P.plan(1, size)
      P.planned()
    end
  end
  local function on_progress(done, total)
    planned(total)
    P.moving(1, done)
  end
  if (s.kind == "local" or s.kind == "std") and d.kind == "remote" then
    local c = client(ctx, d)
    local key = d.key
    if s.kind == "std" then
      if verb == "move" then usage("mv: standard input cannot be moved") end
      if key == "" or key:sub(-1) == "/" then usage("cp -: the destination needs a key") end
      if ctx.dry then return ctx.would("upload: - to " .. d.url) end
      if closed_std.stdin then return ctx.fail(d.url, local_error("standard input is closed: nothing uploaded")) end
      topts.progress = on_progress
      for k, v in pairs(stored) do topts[k] = v end
      local res, err = c:upload_stream(d.bucket, key, io.stdin, topts)
      if not res then return ctx.fail(d.url, err) end
      P.file(1, res.size)
      ctx.acted({ action = "upload", src = "-", dst = d.url, key = key, size = res.size }, "upload: - to " .. d.url)
      return res
    end
    local attr = lfs.attributes(s.path)
    if not attr then return ctx.fail(s.path, local_error("no such file")) end
    if attr.mode == "directory" then usage(verb .. ": '" .. s.path .. "' is a directory (use -r)") end
    if attr.mode ~= "file" then
      -- A pipe (`cp <(cmd) URL`), a device: no size to plan parts with.
      return ctx.fail(s.path, local_error("not a regular file (" .. attr.mode .. "): to upload a stream, use - "
        .. "(command | objstore cp - " .. d.url .. ")"))
    end
    if key == "" or key:sub(-1) == "/" then key = key .. basename(s.path) end
    local target = format("%s://%s/%s", d.provider, d.bucket, key)
    if ctx.dry then return ctx.would(format("%s: %s to %s", verb == "move" and "move" or "upload", s.path, target)) end
    for k, v in pairs(stored) do topts[k] = v end
    topts.metadata = { mtime = tostring(math.floor(attr.modification)) }
    for k, v in pairs(o.metadata or {}) do topts.metadata[k] = v end
    topts.progress = on_progress
    planned(attr.size)
    local cerr
    topts.checkpoint, cerr = checkpoint_of(ctx, "upload", s.path, target)
    if cerr then return ctx.fail(s.path, local_error(cerr)) end
    _M.resume_hint = topts.checkpoint and "run the same command again (with --resume) to resume the upload"
    local res, err = c:upload_file(d.bucket, key, s.path, topts)
    _M.resume_hint = nil
    if not res then return ctx.fail(s.path, err) end
    for _, n in ipairs(res.notices or {}) do ctx.notice(n) end
    if (res.resumed_from or 0) > 0 then
      ctx.notice(format("resumed: %s of %s were already uploaded", progress_mod.human(res.resumed_from),
        progress_mod.human(attr.size)))
    end
    P.file(1, attr.size)
    ctx.acted({ action = verb == "move" and "move" or "upload", src = s.path, dst = target, key = key,
      size = attr.size }, nil)
    if not o.json then ctx.say(format("upload: %s to %s", s.path, target)) end
    if verb == "move" and not unchanged(s.path, attr) then
      -- Written to while it was read: what was uploaded is not the file.
      ctx.fail(s.path, local_error("changed while it was uploaded: the source was kept"))
      return nil
    end
    return res, res.verified == true
  elseif s.kind == "remote" and (d.kind == "local" or d.kind == "std") then
    local c = client(ctx, s)
    if s.key == "" or s.key:sub(-1) == "/" then usage(verb .. ": the source needs a key (or -r)") end
    if d.kind == "std" then
      if verb == "move" then usage("mv: an object cannot be moved to standard output") end
      if ctx.dry then return ctx.would("download: " .. s.url .. " to -") end
      return C.cat(ctx, { s.url })
    end
    local path = d.path
    if path:sub(-1) == "/" or lfs.attributes(path, "mode") == "directory" then
      local name = basename(s.key)
      -- A key ending in "/.." or "/." names no file in a directory (the
      -- rename onto it failed with "Device or resource busy").
      if name == "." or name == ".." then
        return ctx.fail(s.url, local_error("the key ends in '" .. name .. "', which is no file name: give the "
          .. "destination file's name"))
      end
      path = path:gsub("/+$", "") .. "/" .. name
    end
    if ctx.dry then return ctx.would(format("%s: %s to %s", verb == "move" and "move" or "download", s.url, path)) end
    local ok, perr = make_parents(path)
    if not ok then return ctx.fail(d.path, local_error(perr)) end
    topts.progress = on_progress
    topts.sse_customer_key = stored.sse_customer_key
    topts.version_id = o["version-id"]
    local cerr
    topts.checkpoint, cerr = checkpoint_of(ctx, "download", path, s.url)
    if cerr then return ctx.fail(s.url, local_error(cerr)) end
    _M.resume_hint = topts.checkpoint and "run the same command again (with --resume) to resume the download"
    local res, err = c:download_file(s.bucket, s.key, path, topts)
    _M.resume_hint = nil
    if not res then return ctx.fail(s.url, err) end
    for _, n in ipairs(res.notices or {}) do ctx.notice(n) end
    if (res.resumed_from or 0) > 0 then
      ctx.notice(format("resumed: %s of %s were already downloaded", progress_mod.human(res.resumed_from),
        progress_mod.human(res.size or 0)))
    end
    local head = c:head_object(s.bucket, s.key, { sse_customer_key = stored.sse_customer_key,
      version_id = o["version-id"] })
    local mt = head and sync_names.parse_mtime(head.metadata.mtime)
    if mt then lfs.touch(path, mt, mt) end
    P.file(1, res.size)
    ctx.acted({ action = verb == "move" and "move" or "download", src = s.url, dst = path, key = s.key,
      size = res.size }, nil)
    if not o.json then ctx.say(format("download: %s to %s", s.url, path)) end
    return res, res.verified == true
  elseif s.kind == "remote" and d.kind == "remote" then
    if s.provider ~= d.provider then usage(verb .. ": copying between s3:// and oss:// needs a local step") end
    if s.key == "" or s.key:sub(-1) == "/" then usage(verb .. ": the source needs a key (or -r)") end
    local c = client(ctx, s)
    local key = d.key
    if key == "" or key:sub(-1) == "/" then key = key .. basename(s.key) end
    if verb == "move" and s.bucket == d.bucket and s.key == key then
      usage("mv: cannot move an object onto itself")
    end
    local target = format("%s://%s/%s", d.provider, d.bucket, key)
    if ctx.dry then return ctx.would(format("%s: %s to %s", verb, s.url, target)) end
    local copts = { part_size = o["part-size"], concurrency = o.concurrency, progress = on_progress }
    for k, v in pairs(stored) do copts[k] = v end
    local res, err = c:copy_large(d.bucket, key, { bucket = s.bucket, key = s.key, version_id = o["version-id"] },
      copts)
    if not res then return ctx.fail(s.url, err) end
    planned(res.size)
    P.file(1, res.size)
    ctx.acted({ action = verb, src = s.url, dst = target, key = key, size = res.size }, nil)
    if not o.json then ctx.say(format("copy: %s to %s", s.url, target)) end
    -- copy_large: verified when the copy's ETag is the source's, or the
    -- assembled parts were checked.
    return res, res.verified == true
  end
  usage(verb .. ": one side must be an s3:// or oss:// URL")
end

function C.cp(ctx, pos)
  local s, d = sides(pos, "cp")
  if ctx.opts.r then
    if ctx.opts["version-id"] then usage("--version-id names one object: not with -r") end
    return run_sync(ctx, s, d)
  end
  if ctx.opts["version-id"] and s.kind ~= "remote" then
    usage("--version-id names a version of the source object: the source must be an s3:// or oss:// URL")
  end
  local res = copy_one(ctx, s, d, "copy")
  ctx.progress.finish()
  return res
end

--- mv: the source goes only after its own copy succeeded and was verified.
function C.mv(ctx, pos)
  local s, d = sides(pos, "mv")
  local vid = ctx.opts["version-id"]
  if ctx.opts.r then
    if vid then usage("--version-id names one object: not with -r") end
    return run_sync(ctx, s, d, { move = true })
  end
  if vid and s.kind ~= "remote" then
    usage("--version-id names a version of the source object: the source must be an s3:// or oss:// URL")
  end
  local res, verified = copy_one(ctx, s, d, "move")
  if not res or ctx.dry then return end
  local what = s.kind == "local" and s.path or s.url
  if not verified then
    return ctx.fail(what, { code = "NotVerified", message = "the copy could not be verified: the source was kept" })
  end
  if s.kind == "local" then
    local ok, rerr = os.remove(s.path)
    if not ok and lfs.symlinkattributes(s.path) then
      ctx.fail(what, local_error("copied, but the source could not be removed: " .. tostring(rerr)))
    end
  else
    -- The object copied, still: one another writer replaced meanwhile (its
    -- ETag is no longer the one copied) is kept.
    local sc = client(ctx, s)
    local copied = res.source_etag or res.etag
    -- With --version-id: that version (a version never changes), removed
    -- for good; the other versions stay, and if it was the latest the one
    -- before it becomes current. An SSE-C object answers a HEAD without
    -- its key with a bare 400 (the move downloaded it, then kept the source
    -- and exited 1).
    local h, herr = sc:head_object(s.bucket, s.key, { version_id = vid,
      sse_customer_key = sse_c_key(ctx.opts["sse-c-key"]) })
    if not h then
      if herr and herr.status == 404 then return end -- already gone
      return ctx.fail(what, herr)
    end
    local function bare(e) return tostring(e):gsub('"', ""):lower() end
    if not copied or bare(h.etag) ~= bare(copied) then
      return ctx.fail(what, { code = "SourceChanged", message = "changed since it was copied (ETag now "
        .. tostring(h.etag) .. ", was " .. tostring(copied) .. "): the source was kept" })
    end
    local ok, err = sc:delete_object(s.bucket, s.key, { version_id = vid })
    if not ok then ctx.fail(what, err) end
  end
end

--- rm -r: objects under the prefix. The whole listing is read first and
-- only a complete one deletes anything: a listing that fails (a failing
-- page, a repeated continuation token, a truncated page without a way
-- on) stops the run (exit 1) with nothing deleted. Then deletes in
-- batches of 1000. The prefix is the user's, a "/" added when it does not
-- end in one ("p" is "p/", never "pp"; "p//" stays "p//").
local function remove_prefix(ctx, c, loc)
  local prefix = sync_names.prefix(loc.key)
  local keep = sync_filter.new(ctx.opts.filters)
  local keys = {}
  for o, err in c:list_objects_iter(loc.bucket, { prefix = prefix ~= "" and prefix or nil }) do
    if not o then return ctx.fail(loc.url, err) end
    -- Only what lies below the prefix, whatever the store answered.
    if o.key:sub(1, #prefix) == prefix and keep(o.key:sub(#prefix + 1)) then keys[#keys + 1] = o.key end
  end
  if ctx.dry then
    for _, k in ipairs(keys) do ctx.would("delete " .. loc.provider .. "://" .. loc.bucket .. "/" .. k) end
    return 0
  end
  local removed = 0
  for first = 1, #keys, 1000 do
    local batch = {}
    for i = first, math.min(first + 999, #keys) do batch[#batch + 1] = keys[i] end
    local out, err = c:delete_objects(loc.bucket, batch, { quiet = true })
    out = out or err.result -- the partial-failure rule: what was deleted is there
    if not out then
      for _, k in ipairs(batch) do ctx.fail(k, err) end
    else
      -- Counted over the batch's own keys: a failure the server reports
      -- twice, or for a key not asked, takes no other key's count.
      local bad = {}
      for _, e in ipairs(out.errors) do
        if not bad[e.key] then ctx.fail(e.key, e.error or e) end
        bad[e.key] = true
      end
      local done = 0
      for _, k in ipairs(batch) do
        if not bad[k] then
          done = done + 1
          if ctx.opts.json or ctx.opts.verbose then
            ctx.acted({ action = "delete", key = k }, "delete: " .. loc.provider .. "://" .. loc.bucket .. "/" .. k)
          end
        end
      end
      removed = removed + done
      ctx.progress.state.files = ctx.progress.state.files + done
    end
  end
  return removed
end

function C.rm(ctx, pos)
  args.want(pos, 1, 1, "rm needs one URL")
  local loc = remote_arg(pos, 1, "rm needs one URL")
  local c = client(ctx, loc)
  if ctx.opts.r and ctx.opts["version-id"] then usage("--version-id names one object: not with -r") end
  if not ctx.opts.r then
    if ctx.opts.include or ctx.opts.exclude then usage("--include/--exclude need -r") end
    if loc.key == "" then usage("rm: give a key, or -r for a prefix") end
    local vid = ctx.opts["version-id"]
    local what = loc.url .. (vid and (" (version " .. vid .. ")") or "")
    if ctx.dry then return ctx.would("delete " .. what) end
    local ok, err = c:delete_object(loc.bucket, loc.key, { version_id = vid })
    if not ok then return ctx.fail(loc.url, err) end
    if ctx.opts.json then return ctx.json{ type = "action", action = "delete", key = loc.key, version_id = vid } end
    return ctx.say("delete: " .. what)
  end
  remove_prefix(ctx, c, loc)
  ctx.progress.finish()
end

function C.cat(ctx, pos)
  args.want(pos, 1, 1, "cat needs one URL")
  local loc = remote_arg(pos, 1, "cat needs one URL")
  if loc.key == "" then usage("cat: the URL needs a key") end
  local c = client(ctx, loc)
  local out = ctx.out
  local res, err = c:get_object(loc.bucket, loc.key, { sink = function(chunk) return out:try_write(chunk) end,
    sse_customer_key = sse_c_key(ctx.opts["sse-c-key"]), version_id = ctx.opts["version-id"] })
  if not res then return ctx.fail(loc.url, err) end
  out:flush()
  return res
end

function C.stat(ctx, pos)
  args.want(pos, 1, 1, "stat needs one URL")
  local loc = remote_arg(pos, 1, "stat needs one URL")
  if loc.key == "" then usage("stat: the URL needs a key") end
  local h, err = client(ctx, loc):head_object(loc.bucket, loc.key,
    { sse_customer_key = sse_c_key(ctx.opts["sse-c-key"]), version_id = ctx.opts["version-id"] })
  if not h then return ctx.fail(loc.url, err) end
  local t = { key = loc.key, size = h.content_length, etag = h.etag, last_modified = h.last_modified,
    content_type = h.content_type, storage_class = h.storage_class, version_id = h.version_id, metadata = h.metadata,
    cache_control = h.cache_control, content_disposition = h.content_disposition, sse = h.server_side_encryption }
  if ctx.opts.json then return ctx.json(t) end
  for _, k in ipairs{ "key", "size", "etag", "last_modified", "content_type", "cache_control", "content_disposition",
    "storage_class", "sse", "version_id" } do
    if t[k] ~= nil then ctx.out:write(format("%-14s %s\n", k, safe(t[k]))) end
  end
  local names = {}
  for k in pairs(h.metadata or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do ctx.out:write(format("%-14s %s\n", "meta:" .. safe(k), safe(h.metadata[k]))) end
end

function C.mb(ctx, pos)
  args.want(pos, 1, 1, "mb needs one URL")
  local loc = remote_arg(pos, 1, "mb needs one URL")
  if loc.key ~= "" then usage("mb: the URL names a bucket, not a key") end
  if ctx.dry then return ctx.would("make_bucket: " .. loc.bucket) end
  local ok, err = client(ctx, loc):create_bucket(loc.bucket)
  if not ok then return ctx.fail(loc.url, err) end
  ctx.acted({ action = "make_bucket", bucket = loc.bucket }, nil)
  ctx.say("make_bucket: " .. loc.bucket)
end

--- rb: the bucket; --force empties it first (objects, then incomplete
-- uploads), and removes the bucket only when that fully succeeded.
function C.rb(ctx, pos)
  args.want(pos, 1, 1, "rb needs one URL")
  local loc = remote_arg(pos, 1, "rb needs one URL")
  if loc.key ~= "" then usage("rb: the URL names a bucket, not a key") end
  local c = client(ctx, loc)
  if ctx.opts.force then
    remove_prefix(ctx, c, { provider = loc.provider, bucket = loc.bucket, key = "", url = loc.url })
    if ctx.failures > 0 then return end
    if ctx.dry then
      local ups, err = c:list_incomplete_uploads(loc.bucket)
      if not ups then return ctx.fail(loc.url, err) end
      for _, u in ipairs(ups) do ctx.would("abort upload " .. u.upload_id .. " of " .. u.key) end
    else
      local res, err = c:abort_incomplete_uploads(loc.bucket)
      if not res then return ctx.fail(loc.url, err) end
      for _, e in ipairs(res.errors) do ctx.fail(loc.url, e) end
      if ctx.failures > 0 then return end
    end
  end
  if ctx.dry then return ctx.would("remove_bucket: " .. loc.bucket) end
  local ok, err = c:delete_bucket(loc.bucket)
  if not ok then return ctx.fail(loc.url, err) end
  ctx.acted({ action = "remove_bucket", bucket = loc.bucket }, nil)
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
  local url, err = client(ctx, loc):presign(method, loc.bucket, loc.key,
    { expires_in = ctx.opts["expires-in"] or 3600 })
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
  if ctx.opts.checksum and ctx.opts["size-only"] then usage("--checksum and --size-only exclude each other") end
  check_compare_flags(ctx.opts, s, d, false)
  if s.kind == "local" and lfs.attributes(s.path, "mode") ~= "directory" then
    return ctx.fail(s.path, local_error("no such directory"))
  end
  local src, dst = sync_side(ctx, s), sync_side(ctx, d)
  local c = (type(dst) == "table" and dst.client) or src.client
  local report, err = objstore.check(c, src, dst, {
    compare = (ctx.opts.checksum and "checksum") or (ctx.opts["size-only"] and "size_only") or nil,
    modify_window = ctx.opts["modify-window"], follow_symlinks = ctx.opts["follow-symlinks"] or nil,
    filters = #ctx.opts.filters > 0 and ctx.opts.filters or nil })
  if not report then return ctx.fail("check", err) end
  local function list(kind, keys)
    for _, k in ipairs(keys or {}) do
      if ctx.opts.json then ctx.json{ type = kind, key = k } else ctx.out:write(kind, " ", safe(k), "\n") end
    end
  end
  list("differs", report.differ)
  list("missing", report.missing)
  list("extra", report.extra)
  list("unverified", report.unverified)
  for _, e in ipairs(report.errors) do ctx.fail(e.key, e.error) end
  local unverified = report.unverified and #report.unverified or 0
  local compared = report.compared or (ctx.opts.checksum and "content" or ctx.opts["size-only"] and "size"
    or "size and modification time")
  if ctx.opts.json then
    ctx.json{ type = "summary", compared = compared, matched = report.matched, differ = #report.differ,
      missing = #report.missing, extra = #report.extra, unverified = unverified, ok = report.ok }
  elseif not ctx.opts.quiet then
    ctx.err:write(format("compared %s: %d matched, %d differ, %d missing, %d extra, %d not compared\n", compared,
      report.matched, #report.differ, #report.missing, #report.extra, unverified))
  end
  if not report.ok then ctx.failures = ctx.failures + (#report.errors == 0 and 1 or 0) end
end

--- uploads: the incomplete multipart uploads under a prefix; --abort
-- removes them (their parts stop being billed).
function C.uploads(ctx, pos)
  args.want(pos, 1, 1, "uploads needs one URL")
  local loc = remote_arg(pos, 1, "uploads needs one URL")
  local c = client(ctx, loc)
  local prefix = loc.key ~= "" and loc.key or nil
  local ups, err = c:list_incomplete_uploads(loc.bucket, prefix)
  if not ups then return ctx.fail(loc.url, err) end
  local function url(u) return loc.provider .. "://" .. loc.bucket .. "/" .. tostring(u.key) end
  if not ctx.opts.abort then
    for _, u in ipairs(ups) do
      if ctx.opts.json then
        ctx.json{ type = "upload", key = u.key, upload_id = u.upload_id, initiated = u.initiated }
      else
        ctx.out:write(format("%s  %s  %s\n", safe(u.initiated), safe(u.upload_id), safe(url(u))))
      end
    end
    return
  end
  if ctx.dry then
    for _, u in ipairs(ups) do ctx.would("abort upload " .. tostring(u.upload_id) .. " of " .. url(u)) end
    return ctx.would(format("abort %d incomplete upload(s) under %s", #ups, loc.url))
  end
  local res, aerr = c:abort_incomplete_uploads(loc.bucket, { prefix = prefix })
  if not res then return ctx.fail(loc.url, aerr) end
  for _, e in ipairs(res.errors) do ctx.fail(loc.url, e) end
  if ctx.opts.json then
    ctx.json{ type = "action", action = "abort_uploads", bucket = loc.bucket, prefix = prefix, aborted = res.aborted }
  else
    ctx.say(format("aborted %d incomplete upload(s) under %s", res.aborted, loc.url))
  end
end

--- version: objstore's, and the Lua, libcurl and OpenSSL in use.
function C.version(ctx, pos)
  args.want(pos, 0, 0, "version takes no arguments")
  local curl = core.http.curl_version:match("^libcurl/(%S+)") or core.http.curl_version
  local lua = jit and jit.version or _VERSION
  if ctx.opts.json then
    return ctx.json{ objstore = objstore._VERSION, lua = lua, libcurl = curl, openssl = core.openssl_version }
  end
  ctx.out:write(format("objstore %s\n%-8s %s\n%-8s %s (%s)\n%-8s %s\n", objstore._VERSION, "lua", lua, "libcurl",
    curl, core.http.curl_version:match("^%S+%s+(.*)$") or "?", "openssl", core.openssl_version))
end

--- main(argv, out, err) -> exit code
function _M.main(argv, out, err)
  out, err = checked_output(out or io.stdout), err or io.stderr
  -- SIGINT/SIGTERM/SIGHUP raise "interrupted (SIGINT|SIGTERM|SIGHUP)" where Lua runs next
  -- (transfers stop within ~100 ms), so downloads remove their part files
  -- and uploads abort their multipart uploads before the exit: 130 / 143 / 129,
  -- as a shell reports a death by those signals.
  local signal = core.signal
  signal.trap()
  _M.resume_hint = nil
  local function interrupted()
    err:write("objstore: interrupted", _M.resume_hint and ("; " .. _M.resume_hint) or "", "\n")
    local sig = signal.pending()
    return sig == "TERM" and 143 or sig == "HUP" and 129 or EXIT_INTERRUPTED
  end
  -- Global options may come before the command: `objstore --endpoint URL ls`.
  local i = 1
  while argv[i] and argv[i]:sub(1, 1) == "-" and argv[i] ~= "-" and argv[i] ~= "--help" and argv[i] ~= "-h"
    and argv[i] ~= "--version" do
    local flag = args.FLAGS[argv[i]:match("^%-%-?([^=]+)")]
    if flag and flag[1] ~= "bool" and not argv[i]:find("=", 1, true) then i = i + 1 end
    i = i + 1
  end
  local cmd = argv[i]
  if cmd == "--version" then
    cmd, argv[i] = "version", "version"
  end
  if i > 1 and cmd then
    local reordered = { cmd }
    for j = 1, #argv do if j ~= i then reordered[#reordered + 1] = argv[j] end end
    argv = reordered
  end
  local ok, res = pcall(function()
    if cmd == nil or cmd == "--help" or cmd == "-h" or cmd == "help" then
      out:write(help.main)
      out:flush()
      return cmd == nil and EXIT_USAGE or EXIT_OK
    end
    if not C[cmd] then usage("unknown command '" .. tostring(cmd) .. "' (objstore --help lists them)") end
    local opts, pos = args.parse(argv, 2, cmd)
    if opts.help then
      out:write(help[cmd])
      out:flush()
      return EXIT_OK
    end
    local ctx = context(opts, out, err)
    C[cmd](ctx, pos)
    out:flush()
    if ctx.exit then return ctx.exit end
    return ctx.failures > 0 and EXIT_FAILED or EXIT_OK
  end)
  if ok then
    -- An interrupt reported as a failed file still ends the command as one.
    if signal.pending() then return interrupted() end
    return res
  end
  local out_err = type(res) == "string" and res:find(OUTPUT_ERROR, 1, true)
  if out_err then
    err:write("objstore: ", res:sub(out_err), "\n")
    return EXIT_FAILED
  end
  if args.is_usage(res) then
    -- Names the user gave (a file name found by a script) may hold escape sequences.
    err:write("objstore: ", safe(res.usage), "\n")
    err:write("Try 'objstore ", (cmd and help[cmd]) and (cmd .. " ") or "", "--help'.\n")
    return EXIT_USAGE
  end
  -- An interrupt is known by the signal recorded (sticky), never by the
  -- text of the error it raised: an error message that merely holds the
  -- word (a key, a server's answer) is an ordinary failure.
  if signal.pending() then return interrupted() end
  err:write("objstore: ", safe(res), "\n")
  return EXIT_FAILED
end

return _M
