--- Progress of a command, on stderr: on a terminal one line redrawn in
-- place (bytes of total, percentage, rate, ETA, files done/total; "?" for
-- what is not known yet, while a listing still streams or for stdin),
-- cleared before any other output and cut to the terminal's width (read
-- again on every redraw, so a resized window never makes it wrap);
-- otherwise a plain line every `interval` seconds
-- (OBJSTORE_PROGRESS_INTERVAL, default 5); with --json a progress object
-- per interval (on stdout, one JSON object per line); nothing with -q.
--
-- Bytes are counted as they move: `moving(id, done)` gives the bytes done
-- so far of a file in flight (absolute, as transfers report them), `file(id,
-- size)` ends it (its size counted once, whatever was reported before).
-- `plan(files, bytes)` adds to the totals, `planned()` says they are
-- complete (the walk or listing ended). What is shown never exceeds the
-- total, and the ETA is never negative.
local cjson = require "cjson"
local core = require "objstore.core"

local monotonic = core.time.monotonic
local format = string.format
local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min

local _M = {}

local function human(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do
    n = n / 1024
    i = i + 1
  end
  return i == 1 and format("%d %s", floor(n), units[i]) or format("%.1f %s", n, units[i])
end
_M.human = human

function _M.is_tty(fd)
  local ok = os.execute("[ -t " .. (fd or 2) .. " ]")
  return ok == true or ok == 0
end

--- The width of the terminal on `fd` (default 2) as it is now (ioctl
-- TIOCGWINSZ through core.signal.columns: cheap, asked on every redraw so
-- a resized window is followed), or nil when it does not say.
function _M.columns(fd)
  local f = core.signal and core.signal.columns
  local n = f and f(fd or 2)
  if n and n >= 1 then return n end
  return nil
end

--- The terminal's width: the terminal's own, else COLUMNS, else `stty
-- size` on stderr (asked once, when the progress starts), else 80.
function _M.width()
  local n = _M.columns(2)
  if n then return n end
  n = tonumber(os.getenv("COLUMNS") or "")
  if n and n >= 1 then return floor(n) end
  local p = io.popen("stty size <&2 2>/dev/null")
  if p then
    local s = p:read("*a") or ""
    p:close()
    n = tonumber(s:match("^%d+%s+(%d+)"))
    if n and n >= 1 then return n end
  end
  return 80
end

--- new{ mode = "tty"|"plain"|"json"|"quiet", out = stdout, err = stderr, width = columns }
function _M.new(o)
  local self = { mode = o.mode, out = o.out or io.stdout, err = o.err or io.stderr, bytes = 0, files = 0,
    moving = {}, total_files = nil, total_bytes = nil, planned_files = 0, planned_bytes = 0, final = false,
    t0 = monotonic(), last = o.mode == "tty" and -math.huge or monotonic(), drawn = false,
    interval = tonumber(os.getenv("OBJSTORE_PROGRESS_INTERVAL") or "") or (o.mode == "tty" and 0.2 or 5) }
  if self.mode == "tty" then
    self.width = o.width or _M.width()
    -- Followed as the window is resized, unless a width was given.
    self.live = o.width == nil
  end
  local P = {}

  --- Bytes done: the finished files' and those in flight, never above the total.
  local function done_bytes()
    local n = self.bytes
    for _, b in pairs(self.moving) do n = n + b end
    if self.total_bytes then n = min(n, self.total_bytes) end
    return n
  end

  function P.numbers()
    local el = monotonic() - self.t0
    local b = done_bytes()
    local rate = el > 0 and b / el or 0
    local eta
    if self.total_bytes and rate > 0 then eta = max(0, ceil((self.total_bytes - b) / rate)) end
    if self.total_bytes and b >= self.total_bytes then eta = 0 end
    return b, rate, eta, el
  end

  --- The line, in the first of its forms that fits `width` columns (then
  -- cut): full; compact; compact without the rate, then without the files
  -- (bytes of the total and the ETA go last).
  function P.line(width)
    local b, rate, eta = P.numbers()
    local tb = self.total_bytes
    local pct = tb and (tb > 0 and floor(100 * b / tb) or 100)
    local e = "ETA " .. (eta and (eta .. "s") or "?")
    local files = self.files .. "/" .. (self.total_files and tostring(self.total_files) or "?")
    local full = format("%s%s, %s/s, %s, files %s", human(b),
      tb and format(" of %s (%d%%)", human(tb), pct) or "", human(rate), e, files)
    if not width or #full <= width then return full end
    local bt = human(b) .. (tb and format("/%s %d%%", human(tb), pct) or "")
    local r = human(rate) .. "/s"
    local forms = { { bt, r, e, files }, { bt, e, files }, { bt, r, e }, { bt, e } }
    for _, f in ipairs(forms) do
      local line = table.concat(f, " ")
      if #line <= width then return line end
    end
    return (bt .. " " .. e):sub(1, width)
  end

  --- Clears the terminal's progress line (before any other output).
  -- What erases the line drawn last: "\r\27[K", and when the terminal
  -- has become narrower than that line (a terminal that reflows, as tmux,
  -- VTE, kitty or iTerm2 do, has wrapped it onto more rows, the cursor on
  -- the last) the rows above it too.
  local function erase()
    local rows = 1
    if self.drawn_len and self.width > 0 and self.drawn_len > self.width then
      rows = ceil(self.drawn_len / self.width)
    end
    return "\r\27[K" .. string.rep("\27[A\27[K", rows - 1)
  end

  --- Re-reads the width (a resize, SIGWINCH, since the last redraw).
  local function follow_width()
    if not self.live then return end
    local n = _M.columns(2)
    if n then self.width = n end
  end

  function P.clear()
    if self.drawn then
      follow_width()
      self.err:write(erase())
      self.err:flush()
      self.drawn = false
      self.drawn_len = nil
    end
  end

  function P.show(final)
    if self.mode == "quiet" then return end
    local now = monotonic()
    if not final and now - self.last < self.interval then return end
    self.last = now
    if self.mode == "tty" then
      follow_width()
      -- One column short of the width: a line that fills it would wrap.
      local line = P.line(max(1, self.width - 1))
      self.err:write(self.drawn and erase() or "\r\27[K", line, final and "\n" or "")
      self.err:flush()
      self.drawn = not final
      self.drawn_len = not final and #line or nil
    elseif self.mode == "plain" then
      self.err:write(P.line(), "\n")
      self.err:flush()
    elseif self.mode == "json" and not final then
      local b, rate, eta, el = P.numbers()
      self.out:write(cjson.encode{ type = "progress", bytes = b, total_bytes = self.total_bytes, files = self.files,
        total_files = self.total_files, elapsed = el, rate = rate, eta = eta }, "\n")
      self.out:flush()
    end
  end

  --- Totals grow as the plan does; shown once planned() says they are complete.
  function P.plan(files, bytes)
    self.planned_files = self.planned_files + (files or 0)
    self.planned_bytes = self.planned_bytes + (bytes or 0)
    if self.final then self.total_files, self.total_bytes = self.planned_files, self.planned_bytes end
  end

  function P.planned()
    self.final = true
    self.total_files, self.total_bytes = self.planned_files, self.planned_bytes
    P.show(false)
  end

  --- Bytes done so far of the file `id` in flight (absolute).
  function P.moving(id, done)
    self.moving[id or 1] = done or 0
    P.show(false)
  end

  --- The file `id` finished: `bytes` of it (counted once).
  function P.file(id, bytes)
    self.moving[id or 1] = nil
    self.files = self.files + 1
    self.bytes = self.bytes + (bytes or 0)
    P.show(false)
  end

  function P.finish()
    if not self.total_files then self.total_files = self.files end
    P.show(true)
  end

  P.state = self
  return P
end

return _M
