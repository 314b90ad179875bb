-- Property test of the checkpoint loader (core.mpu checkpoints, the C
-- os_ckpt format): a file derived from a valid checkpoint by truncation,
-- byte mutation, splicing or structural edits must never make the loader
-- raise or crash; it resumes (applying only intact records that fit the
-- plan), or starts clean ("foreign": not a checkpoint of this format;
-- "other": another transfer). 2000 cases from a fixed seed, so a failure
-- names a case that replays. The libFuzzer target csrc/fuzz/fuzz_checkpoint.c
-- covers the same loader without a seed bound.
local core = require "objstore.core"

local CASES, SEED = 2000, 20261201
local SIZE, PSIZE = 64 * 1024, 1024
local HEADER = { kind = "upload", bucket = "bkt", key = "dir/caf\195\169 a+b.bin", file_size = SIZE,
  file_mtime = 1764633600, file_inode = 1234, part_size = PSIZE, object_size = SIZE }

-- Park-Miller "minimal standard" generator: exact in doubles on every Lua.
local function rng(seed)
  local x = seed % 2147483647
  if x <= 0 then x = x + 2147483646 end
  return function(lo, hi)
    x = (x * 16807) % 2147483647
    if hi <= lo then return lo end
    return lo + x % (hi - lo + 1)
  end
end

-- Tokens that change the meaning, not only the syntax.
local TOKENS = { "null", "true", "false", "0", "-1", "1e999", "-0", "1.5", "\"1\"", "\"\"", "[]", "{}",
  "\"\\u0000\"", "\"\\ud800\"", "\"\\uZZZZ\"", "\"version\"", "\"kind\"", ",", ":", "{", "}", "[", "]", "\"",
  "\\", "\0", "\255\254", "\239\187\191", "9007199254740993", string.rep("[", 2000), string.rep("9", 400) }

local function mutate(text, r)
  local n = #text
  local op = r(1, 9)
  if op == 1 then -- truncate
    return text:sub(1, r(0, n - 1))
  elseif op == 2 then -- overwrite 1..8 bytes
    local t = text
    for _ = 1, r(1, 8) do
      local i = r(1, #t)
      t = t:sub(1, i - 1) .. string.char(r(0, 255)) .. t:sub(i + 1)
    end
    return t
  elseif op == 3 then -- insert random bytes
    local i, bytes = r(0, n), {}
    for k = 1, r(1, 16) do bytes[k] = string.char(r(0, 255)) end
    return text:sub(1, i) .. table.concat(bytes) .. text:sub(i + 1)
  elseif op == 4 then -- delete a range
    local i = r(1, n)
    return text:sub(1, i - 1) .. text:sub(i + r(1, 32))
  elseif op == 5 then -- duplicate a range somewhere else
    local i = r(1, n)
    local piece = text:sub(i, i + r(1, 64))
    local j = r(0, n)
    return text:sub(1, j) .. piece .. text:sub(j + 1)
  elseif op == 6 then -- insert or replace with a token
    local i = r(1, n)
    local tok = TOKENS[r(1, #TOKENS)]
    return text:sub(1, i - 1) .. tok .. text:sub(i + (r(0, 1) == 1 and r(1, 8) or 0))
  elseif op == 7 then -- change one byte of the preamble or of the first record's header
    local i = r(0, 1) == 1 and r(1, math.min(n, 24)) or r(1, n)
    return text:sub(1, i - 1) .. string.char(r(0, 255)) .. text:sub(i + 1)
  elseif op == 8 then -- random bytes
    local bytes = {}
    for k = 1, r(0, 64) do bytes[k] = string.char(r(0, 255)) end
    return table.concat(bytes)
  else -- stack two mutations
    return mutate(mutate(text, r), r)
  end
end


--- Valid checkpoint images: written by C, read back as bytes.
local function valid_texts(path)
  local out = {}
  for _, nrec in ipairs{ 0, 3, 9 } do
    os.remove(path)
    local m = assert(core.mpu.new{ size = SIZE, part_size = PSIZE })
    local ck = assert(core.mpu.checkpoint(path))
    local h = {}
    for k, v in pairs(HEADER) do h[k] = v end
    h.upload_id = nrec > 0 and "2~AbCdEf_-.xyz" or nil
    assert(ck:reset(h))
    for i = 1, nrec do
      local n = m:next()
      assert(m:done(n, nil, core.hash.md5(tostring(i)), "\1\2\3\4\5\6\7\8"))
      assert(ck:append(m, n))
    end
    ck:close()
    local f = assert(io.open(path, "rb"))
    out[#out + 1] = f:read("*a")
    f:close()
  end
  return out
end

local function load(path)
  local m = assert(core.mpu.new{ size = SIZE, part_size = PSIZE })
  local ck = assert(core.mpu.checkpoint(path))
  local status, h, torn = ck:load(m, HEADER)
  ck:close()
  return status, h, torn, m
end

describe("checkpoint loader on mutated files", function()
  local path

  before_each(function()
    path = os.tmpname()
  end)

  after_each(function()
    os.remove(path)
    os.remove(path .. ".new")
  end)

  it("never raises; resumes with only intact records or starts clean (" .. CASES .. " cases)", function()
    local r = rng(SEED)
    local texts = valid_texts(path)
    local counts = { resume = 0, foreign = 0, other = 0, empty = 0 }
    for case = 1, CASES do
      local text = mutate(texts[r(1, #texts)], r)
      local f = assert(io.open(path, "wb"))
      f:write(text)
      f:close()
      local where = ("case %d (seed %d): %q"):format(case, SEED, text:sub(1, 120))
      local ok, status, h, torn, m = pcall(load, path)
      assert(ok, "the loader raised on " .. where .. ": " .. tostring(status))
      assert(counts[status], "unknown status " .. tostring(status) .. ": " .. where)
      counts[status] = counts[status] + 1
      if status == "resume" then
        assert(type(h) == "table" and h.kind == "upload" and type(torn) == "boolean", "bad header: " .. where)
        local _, done = m:count()
        assert(done * core.mpu.RECORD_SIZE <= #text, "more records than bytes: " .. where)
        assert(m:bytes_done() <= SIZE, "bytes beyond the object: " .. where)
      elseif status ~= "empty" then
        assert(type(h) == "string", "no reason: " .. where)
      end
    end
    -- Every outcome but "other" is exercised, so the generator is not degenerate.
    assert.is_true(counts.resume > 0 and counts.foreign > 0)
  end)

  it("reads the unmutated checkpoints; a torn tail loses only the last record", function()
    local texts = valid_texts(path)
    local f = assert(io.open(path, "wb"))
    f:write(texts[3])
    f:close()
    local status, h, torn, m = load(path)
    assert.equal("resume", status)
    assert.equal("2~AbCdEf_-.xyz", h.upload_id)
    assert.is_false(torn)
    assert.equal(9, select(2, m:count()))
    f = assert(io.open(path, "wb"))
    f:write(texts[3]:sub(1, -2))
    f:close()
    local status2, _, torn2, m2 = load(path)
    assert.equal("resume", status2)
    assert.is_true(torn2)
    assert.equal(8, select(2, m2:count()))
    -- an empty file is a new checkpoint
    assert(io.open(path, "wb")):close()
    assert.equal("empty", (load(path)))
  end)
end)
