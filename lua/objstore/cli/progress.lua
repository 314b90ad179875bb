--- Progress of a command, on stderr: on a terminal one line redrawn in
-- place (bytes, rate, ETA, files done/total; "?" for what is not known
-- yet, while a listing still streams or for stdin); otherwise a plain
-- line every `interval` seconds (OBJSTORE_PROGRESS_INTERVAL, default 5);
-- with --json a stats object per interval and a summary at the end (on
-- stdout, one JSON object per line); nothing with -q.
local cjson = require "cjson"
local core = require "objstore.core"

local monotonic = core.time.monotonic
local format = string.format

local _M = {}

local function human(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do
    n = n / 1024
    i = i + 1
  end
  return i == 1 and format("%d %s", math.floor(n), units[i]) or format("%.1f %s", n, units[i])
end
_M.human = human

function _M.is_tty(fd)
  local ok = os.execute("[ -t " .. (fd or 2) .. " ]")
  return ok == true or ok == 0
end

--- new{ mode = "tty"|"plain"|"json"|"quiet", out = stdout, err = stderr }
function _M.new(o)
  local self = { mode = o.mode, out = o.out or io.stdout, err = o.err or io.stderr, bytes = 0, files = 0,
    total_files = nil, total_bytes = nil, t0 = monotonic(), last = monotonic(),
    interval = tonumber(os.getenv("OBJSTORE_PROGRESS_INTERVAL") or "") or (o.mode == "tty" and 0.2 or 5) }
  local P = {}

  function P.line()
    local el = monotonic() - self.t0
    local rate = el > 0 and self.bytes / el or 0
    local eta = "?"
    if self.total_bytes and rate > 0 then eta = format("%ds", math.ceil((self.total_bytes - self.bytes) / rate)) end
    return format("%s%s, %s/s, ETA %s, files %d/%s", human(self.bytes),
      self.total_bytes and (" of " .. human(self.total_bytes)) or "", human(rate), eta, self.files,
      self.total_files and tostring(self.total_files) or "?")
  end

  function P.show(final)
    if self.mode == "quiet" then return end
    local now = monotonic()
    if not final and now - self.last < self.interval then return end
    self.last = now
    if self.mode == "tty" then
      self.err:write("\r\27[K", P.line(), final and "\n" or "")
      self.err:flush()
    elseif self.mode == "plain" then
      self.err:write(P.line(), "\n")
      self.err:flush()
    elseif self.mode == "json" and not final then
      local el = now - self.t0
      self.out:write(cjson.encode{ type = "progress", bytes = self.bytes, files = self.files,
        total_files = self.total_files, elapsed = el, rate = el > 0 and self.bytes / el or 0 }, "\n")
      self.out:flush()
    end
  end

  -- self.bytes = done (bytes of finished files) + the current file's
  -- bytes so far: a finished file counts once, whether or not its
  -- transfer reported progress first.
  self.done = 0

  --- A file finished (bytes of it).
  function P.file(bytes)
    self.files = self.files + 1
    self.done = self.done + (bytes or 0)
    self.bytes = self.done
    P.show(false)
  end

  --- Bytes of a transfer in progress (absolute for the current file).
  function P.bytes(done_bytes, total)
    self.bytes = self.done + done_bytes
    self.total_bytes = total and self.done + total or nil
    P.show(false)
  end

  function P.finish(total_files)
    self.total_files = total_files or self.files
    P.show(true)
  end

  P.state = self
  return P
end

return _M
