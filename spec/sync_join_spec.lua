-- The sync's building blocks on their own (issue 20): the join of two
-- sorted listings (objstore.sync.join) and the verdict codes of
-- objstore.sync.compare. No store, no files beyond one digest test.
local join = require "objstore.sync.join"
local compare = require "objstore.sync.compare"
local names = require "objstore.sync.names"

local function e(rel, t)
  t = t or {}
  t.rel = rel
  return t
end

--- The join as strings: "s:a" (source only), "d:a" (destination only), "=a" (both).
local function shape(src, dst)
  local out = {}
  for _, p in ipairs(join.list(src, dst)) do
    local s, d = p[1], p[2]
    if s and d then
      assert.equals(s.rel, d.rel)
      out[#out + 1] = "=" .. s.rel
    elseif s then
      out[#out + 1] = "s:" .. s.rel
    else
      out[#out + 1] = "d:" .. d.rel
    end
  end
  return out
end

describe("sync join", function()
  it("pairs equal names and keeps each side's own names in order", function()
    assert.same({ "=a", "s:b", "d:c", "=d" }, shape({ e"a", e"b", e"d" }, { e"a", e"c", e"d" }))
  end)

  it("gives the pair of one name as the two entries of that name", function()
    local s, d = e("x", { side = "s" }), e("x", { side = "d" })
    local out = join.list({ s }, { d })
    assert.equals(1, #out)
    assert.equals(s, out[1][1])
    assert.equals(d, out[1][2])
  end)

  it("one side empty: every name is the other side's alone", function()
    assert.same({ "s:a", "s:b" }, shape({ e"a", e"b" }, {}))
    assert.same({ "d:a", "d:b" }, shape({}, { e"a", e"b" }))
    assert.same({}, shape({}, {}))
  end)

  it("sorts by bytes: 'p' and 'p/x' before 'p2/x' ('/' is 0x2F, '2' is 0x32), 'a-b' before 'a/b'", function()
    assert.same({ "d:a-b", "s:a/b", "=p", "s:p/x", "d:p2/x" },
      shape({ e"a/b", e"p", e"p/x" }, { e"a-b", e"p", e"p2/x" }))
  end)

  it("a prefix 'p' lists as 'p/' (never its sibling 'p2/'): relative names join", function()
    local prefix = names.prefix("p")
    assert.equals("p/", prefix)
    local keys = { "p/a", "p/b" }
    local dst = {}
    for _, k in ipairs(keys) do
      assert.equals(prefix, k:sub(1, #prefix))
      dst[#dst + 1] = e(k:sub(#prefix + 1))
    end
    assert.same({ "=a", "=b" }, shape({ e"a", e"b" }, dst))
  end)

  it("an NFD local name joins its NFC key once composed (as the walk composes it)", function()
    local nfd, nfc = "cafe\204\129", "caf\195\169" -- e + U+0301, U+00E9
    assert.equals(nfc, names.nfc(nfd))
    assert.same({ "=" .. nfc }, shape({ e(names.nfc(nfd)) }, { e(nfc) }))
    -- Uncomposed, the two spellings are two names: the composition is the walk's job, never the join's.
    assert.same({ "s:" .. nfd, "d:" .. nfc }, shape({ e(nfd) }, { e(nfc) }))
  end)

  it("reads a stream only when its next entry is needed", function()
    local reads = {}
    local function stream(tag, list)
      local i = 0
      return function()
        i = i + 1
        reads[#reads + 1] = tag .. i
        return list[i]
      end
    end
    local jn = join.new(stream("s", { e"a", e"b" }), stream("d", { e"b" }))
    assert.same({}, reads)
    local s, d = jn:next()
    assert.equals("a", s.rel)
    assert.is_nil(d)
    assert.same({ "s1", "d1" }, reads)
    s, d = jn:next()
    assert.equals("b", s.rel)
    assert.equals("b", d.rel)
    assert.same({ "s1", "d1", "s2" }, reads)
    assert.is_false(jn:more())
    assert.same({ "s1", "d1", "s2", "s3", "d2" }, reads)
    assert.is_nil(jn:next())
    assert.same({ "s1", "d1", "s2", "s3", "d2" }, reads) -- an ended stream is not read again
  end)
end)

describe("sync compare verdict codes", function()
  local opts = {}
  local function code(kind, s, d, st, o)
    local verdict, reason, c = compare.decide(kind, s, d, st, o or opts, "aws")
    assert.is_string(reason)
    return c, verdict
  end

  it("missing: no destination entry", function()
    local c, v = code("up", { rel = "a", size = 1, mtime = 1 }, nil)
    assert.equals("missing", c)
    assert.equals("transfer", v)
  end)

  it("differ: another size, whatever the mode", function()
    for _, mode in ipairs{ "size_mtime", "size_only", "checksum" } do
      local c, v = code("copy", { size = 1, etag = '"a"' }, { size = 2, etag = '"a"' }, nil, { compare = mode })
      assert.equals("differ", c, mode)
      assert.equals("transfer", v)
    end
  end)

  it("matched: size only, or size and mtime (the content was not compared)", function()
    assert.equals("matched", (code("up", { size = 3, mtime = 5 }, { size = 3, mtime = 1 }, nil,
      { compare = "size_only" })))
    assert.equals("matched", (code("up", { size = 3, mtime = 5 }, { size = 3, head = true, meta_mtime = 5 })))
  end)

  it("differ: another mtime", function()
    assert.equals("differ", (code("up", { size = 3, mtime = 5 }, { size = 3, head = true, meta_mtime = 9 })))
  end)

  it("head: undecidable from the listing and without a state", function()
    local c, v = code("up", { size = 3, mtime = 5 }, { size = 3, etag = '"x"' })
    assert.equals("head", c)
    assert.equals("head", v)
  end)

  it("same, differ, head and unverified on copies compared by checksum", function()
    local o = { compare = "checksum" }
    assert.equals("same", (code("copy", { size = 1, etag = '"e"' }, { size = 1, etag = '"e"' }, nil, o)))
    assert.equals("head", (code("copy", { size = 1, etag = '"e"' }, { size = 1, etag = '"f"' }, nil, o)))
    assert.equals("same", (code("copy", { size = 1, etag = '"e"', head = true, meta_crc = "c" },
      { size = 1, etag = '"f"', head = true, meta_crc = "c" }, nil, o)))
    assert.equals("differ", (code("copy", { size = 1, etag = '"e"', head = true, meta_crc = "c" },
      { size = 1, etag = '"f"', head = true, meta_crc = "d" }, nil, o)))
  end)

  it("unverified: a multipart ETag, HEADed, no checksum and no local file to recompute", function()
    local c, v = code("up", { size = 1, mtime = 1 }, { size = 1, etag = '"0123456789abcdef0123456789abcdef-2"',
      head = true }, nil, { compare = "checksum" })
    assert.equals("unverified", c)
    assert.equals("skip", v)
  end)

  it("move: what cannot be compared is transferred again (differ), never unverified", function()
    local c, v = code("up", { size = 1, mtime = 1 }, { size = 1, etag = '"0123456789abcdef0123456789abcdef-2"',
      head = true }, nil, { move = true })
    assert.equals("differ", c)
    assert.equals("transfer", v)
  end)
end)
