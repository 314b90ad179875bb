-- Property test of the checkpoint loader (objstore.transfer.checkpoint): a
-- file derived from a valid checkpoint by truncation, byte mutation, splicing
-- or structural edits must never make checkpoint.read raise; it returns a
-- table of the right shape or nil, err with err.code "CorruptCheckpoint".
-- 2000 cases from a fixed seed, so a failure names a case that replays.
local checkpoint = require "objstore.transfer.checkpoint"
local cjson = require "cjson"

local CASES, SEED = 2000, 20261201

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

local function valid_texts()
  local up = { version = 1, kind = "upload", bucket = "bkt", key = "dir/caf\195\169 a+b.bin", size = 26214400,
    mtime = 1764633600, part_size = 5242880, upload_id = "2~AbCdEf_-.xyz",
    parts = { { number = 1, etag = "\"9b2cf535f27731c974343645a3985328\"", size = 5242880, crc32c = "yZRlqg==" },
      { number = 3, etag = "\"d41d8cd98f00b204e9800998ecf8427e\"", size = 5242880 } } }
  local down = { version = 1, kind = "download", bucket = "bkt", key = "k", etag = "\"abc-4\"", size = 1048576,
    part_size = 262144, done = { { number = 2, size = 262144 } } }
  return { cjson.encode(up), cjson.encode(down) }
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
  elseif op == 7 then -- change the value of version or kind
    local field = r(0, 1) == 1 and "version" or "kind"
    local tok = TOKENS[r(1, 16)]
    return (text:gsub('"' .. field .. '":[^,}]*', '"' .. field .. '":' .. tok, 1))
  elseif op == 8 then -- random bytes
    local bytes = {}
    for k = 1, r(0, 64) do bytes[k] = string.char(r(0, 255)) end
    return table.concat(bytes)
  else -- stack two mutations
    return mutate(mutate(text, r), r)
  end
end

describe("checkpoint.read on mutated files", function()
  local path

  before_each(function()
    path = os.tmpname()
  end)

  after_each(function()
    os.remove(path)
  end)

  it("never raises and returns a checkpoint or CorruptCheckpoint (" .. CASES .. " cases)", function()
    local r = rng(SEED)
    local texts = valid_texts()
    local counts = { ok = 0, corrupt = 0 }
    for case = 1, CASES do
      local text = mutate(texts[r(1, #texts)], r)
      local f = assert(io.open(path, "wb"))
      f:write(text)
      f:close()
      local ok, t, err = pcall(checkpoint.read, path)
      local where = ("case %d (seed %d): %q"):format(case, SEED, text:sub(1, 200))
      assert(ok, "checkpoint.read raised on " .. where .. ": " .. tostring(t))
      if t ~= nil then
        assert(type(t) == "table" and err == nil, "not a table: " .. where)
        assert(t.version == checkpoint.VERSION and type(t.kind) == "string", "wrong shape accepted: " .. where)
        counts.ok = counts.ok + 1
      else
        assert(type(err) == "table" and err.code == "CorruptCheckpoint", "no CorruptCheckpoint: " .. where)
        assert(err.retryable == false and type(tostring(err)) == "string", "bad error: " .. where)
        counts.corrupt = counts.corrupt + 1
      end
    end
    -- Both outcomes are exercised, so the generator is not degenerate.
    assert.is_true(counts.ok > 0 and counts.corrupt > 0)
  end)

  it("reads the unmutated checkpoints, and an empty file is corrupt", function()
    for _, text in ipairs(valid_texts()) do
      local f = assert(io.open(path, "wb"))
      f:write(text)
      f:close()
      local t = assert(checkpoint.read(path))
      assert.equal(1, t.version)
    end
    assert(io.open(path, "wb")):close()
    local t, err = checkpoint.read(path)
    assert.is_nil(t)
    assert.equal("CorruptCheckpoint", err.code)
  end)
end)
