-- Specs for objstore.checksum and the core.hash / core.crc objects under it.
local checksum = require "objstore.checksum"
local core = require "objstore.core"

local CRCS = { "crc32", "crc32c", "crc64ecma", "crc64nvme" }
local HAS_INT64 = math.type ~= nil -- Lua 5.3+

-- Deterministic pseudo-random bytes (an LCG), the same on every interpreter.
local function bytes(n, seed)
  local s, out = seed or 1, {}
  for i = 1, n do
    s = (s * 1103515245 + 12345) % 2147483648
    out[i] = string.char(s % 256)
  end
  return table.concat(out)
end

-- 1 MiB and more: a random 64 KiB block repeated with a varying separator,
-- as generating every byte in Lua would dominate the run time.
local big_cache
local function big_bytes()
  if not big_cache then
    local block, parts = bytes(65536, 3), {}
    for i = 1, 16 do parts[i] = block .. string.char(i, 255 - i, i * 7 % 256) end
    big_cache = table.concat(parts) .. bytes(29, 5)
  end
  return big_cache
end

local function rng(seed)
  local s = seed
  return function(m)
    s = (s * 1103515245 + 12345) % 2147483648
    return s % m
  end
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function implementations(kind)
  local list = {}
  for _, impl in ipairs({ "table", "sse4.2", "pclmul", "best" }) do
    if core.crc._compute_with(kind, impl, "") then list[#list + 1] = impl end
  end
  return list
end

describe("objstore.checksum", function()
  it("is a module table with _VERSION and no globals", function()
    assert.is_string(checksum._VERSION)
    assert.equals(core._VERSION, checksum._VERSION)
    assert.same({ "md5", "sha1", "sha256", "crc32", "crc32c", "crc64ecma", "crc64nvme" }, checksum.ALGORITHMS)
  end)

  describe("known values", function()
    -- RevEng catalogue check values: CRC of ASCII "123456789".
    local CHECK = {
      crc32 = "cbf43926", crc32c = "e3069283", crc64ecma = "995dc9bbdf1939fa", crc64nvme = "ae8b14860a799888",
    }
    for _, kind in ipairs(CRCS) do
      it(kind .. " check value", function()
        assert.equals(CHECK[kind], checksum[kind .. "_hex"]("123456789"))
        assert.equals(CHECK[kind], checksum.new(kind):update("123456789"):hex())
        assert.equals(unhex(CHECK[kind]), checksum[kind]("123456789"))
        assert.equals(("00"):rep(checksum.size(kind)), checksum[kind .. "_hex"](""))
      end)
    end

    it("crc decimal, base64 and value forms", function()
      assert.equals("11051210869376104954", checksum.crc64ecma_decimal("123456789"))
      assert.equals("3421780262", checksum.crc32_decimal("123456789"))
      assert.equals("y/Q5Jg==", checksum.crc32_base64("123456789"))
      assert.equals("jSnVw/bqjr4=", checksum.crc64nvme_base64("hello world"))
      local c = checksum.new("crc32"):update("123456789")
      local v, dec = c:value()
      assert.equals(3421780262, v)
      assert.equals("3421780262", dec)
      local c64 = checksum.new("crc64ecma"):update("123456789")
      v, dec = c64:value()
      assert.equals("11051210869376104954", dec)
      if HAS_INT64 then
        -- The two's-complement bit pattern, as Java's CRC64 long shows it.
        assert.equals(math.tointeger(-7395533204333446662), v)
        assert.equals("995dc9bbdf1939fa", string.format("%016x", v))
      else
        assert.is_nil(v) -- never a rounded double
      end
      assert.equals(9, c64:length())
      assert.equals("crc64ecma", c64:kind())
      assert.equals(c64:bytes(), c64:digest())
      assert.equals(c64:hex(), c64:hexdigest())
      assert.equals(c64:base64(), c64:base64digest())
    end)

    it("hashes (FIPS 180 / RFC 1321 examples)", function()
      assert.equals("900150983cd24fb0d6963f7d28e17f72", checksum.md5_hex("abc"))
      assert.equals("a9993e364706816aba3e25717850c26c9cd0d89d", checksum.sha1_hex("abc"))
      assert.equals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", checksum.sha256_hex("abc"))
      assert.equals("1B2M2Y8AsgTpgAmY7PhCfg==", checksum.md5_base64("")) -- Content-MD5 of an empty body
      assert.equals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", checksum.sha256_hex(""))
      assert.equals(32, #checksum.sha256("x"))
      assert.equals(core.hash.md5("abc"), checksum.digest("md5", "abc"))
    end)

    it("HMAC (RFC 2202, RFC 4231)", function()
      local key, data = ("\11"):rep(20), "Hi There"
      assert.equals("b617318655057264e28bc0b6fb378c8ef146be00", checksum.hmac_hex("sha1", key, data))
      assert.equals("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        checksum.hmac_hex("sha256", key, data))
      assert.equals("9294727a3638bb1c13f48ef8158bfc9d", checksum.hmac_hex("md5", ("\11"):rep(16), data))
      -- Keys longer than a block are hashed first (RFC 4231 case 6).
      assert.equals("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        checksum.hmac_hex("sha256", ("\170"):rep(131), "Test Using Larger Than Block-Size Key - Hash Key First"))
      -- Empty key and message.
      assert.equals("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad",
        checksum.hmac_hex("sha256", "", ""))
      local h = checksum.new_hmac("sha256", key)
      assert.equals(checksum.hmac("sha256", key, data), h:update("Hi "):update("There"):digest())
      assert.same({ "sha256", true }, { h:algorithm() })
      assert.equals(core.hash.hmac("sha1", "k", "m"), checksum.hmac("sha1", "k", "m"))
    end)
  end)

  describe("streaming", function()
    local data = bytes(100003, 7)
    for _, alg in ipairs(checksum.ALGORITHMS) do
      it(alg .. " in odd-sized chunks equals one-shot", function()
        local want = checksum.digest(alg, data)
        for _, sizes in ipairs({ { 1 }, { 3, 5, 7 }, { 127, 129, 1 }, { 4096, 13 }, { 65537 } }) do
          local obj, i, k = checksum.new(alg), 1, 0
          while i <= #data do
            k = k % #sizes + 1
            obj:update(data:sub(i, i + sizes[k] - 1))
            i = i + sizes[k]
          end
          obj:update("")
          assert.equals(want, obj:digest())
        end
      end)
    end

    it("update returns the object, digests can be read in every form", function()
      local h = checksum.new("sha256")
      assert.equals(h, h:update("a"))
      local raw = h:digest()
      assert.equals(checksum.tohex(raw), h:hexdigest())
      assert.equals(checksum.tobase64(raw), h:base64digest())
      assert.equals(raw, h:digest())
    end)

    it("copy forks the state", function()
      for _, alg in ipairs(checksum.ALGORITHMS) do
        local a = checksum.new(alg):update("hello ")
        local b = a:copy()
        a:update("world")
        b:update("there")
        assert.equals(checksum.digest(alg, "hello world"), a:digest())
        assert.equals(checksum.digest(alg, "hello there"), b:digest())
      end
      local f = checksum.new("md5"):update("x")
      local d = f:digest()
      assert.equals(d, f:copy():digest()) -- a finished hash copies as finished
    end)

    it("a CRC continues from an initial value (OSS append)", function()
      local first = checksum.crc64ecma_decimal("hi oss,append object")
      assert.equals("2313496259928504459", first)
      local c = checksum.new("crc64ecma", first):update(",this is a demo")
      assert.equals("8586970469916596321", c:decimal())
      assert.equals(15, c:length())
      assert.equals(c:bytes(), core.crc.compute("crc64ecma", ",this is a demo", first))
      -- A number works as well where it is exact.
      local c32 = checksum.new("crc32", 3421780262):update("x")
      assert.equals(checksum.crc32("123456789x"), c32:bytes())
      if HAS_INT64 then
        local v = checksum.new("crc64nvme"):update("abc"):value()
        assert.equals(checksum.crc64nvme("abcdef"), checksum.new("crc64nvme", v):update("def"):bytes())
      end
    end)
  end)

  describe("combine", function()
    for _, kind in ipairs(CRCS) do
      it(kind .. " of random splits equals the CRC of the concatenation", function()
        local r = rng(#kind)
        for _ = 1, 60 do
          local a, b = bytes(r(3000), r(1000) + 1), bytes(r(3000), r(1000) + 2)
          if r(5) == 0 then a = "" end
          if r(5) == 0 then b = "" end
          local want = checksum[kind](a .. b)
          assert.equals(want, checksum.combine(kind, checksum[kind](a), checksum[kind](b), #b))
        end
      end)

      it(kind .. " of many parts, incl. empty ones", function()
        local parts, list, r = {}, {}, rng(99)
        for i = 1, 25 do
          parts[i] = (i % 4 == 0) and "" or bytes(r(700), i)
          list[i] = { crc = checksum[kind](parts[i]), length = #parts[i] }
        end
        local whole = table.concat(parts)
        local got, total = checksum.combine_parts(kind, list)
        assert.equals(checksum[kind](whole), got)
        assert.equals(#whole, total)
      end)
    end

    it("with a second length beyond 4 GiB", function()
      -- CRC(A || 5 GiB of zeros) streamed for real, against combine of the
      -- zero-run CRC that itself comes from combining 1 MiB pieces.
      local mib = ("\0"):rep(1024 * 1024)
      local n = 5 * 1024 * 1024 * 1024
      for _, kind in ipairs({ "crc32", "crc64ecma" }) do
        local a = checksum[kind]("abc")
        local zero_mib = checksum[kind](mib)
        local z, obj = zero_mib, checksum.new(kind, checksum.to_decimal(a)):update(mib)
        for _ = 2, 5 * 1024 do
          z = checksum.combine(kind, z, zero_mib, #mib)
          obj:update(mib)
        end
        assert.equals(n, obj:length())
        assert.equals(obj:bytes(), checksum.combine(kind, a, z, n))
      end
    end)

    it("decimal form, as OSS headers carry it", function()
      assert.equals("7672622622872733320",
        checksum.combine_decimal("crc64ecma", "11051210869376104954", "2871916124362751090", 49))
      assert.equals(checksum.crc64ecma_decimal("123456789This is a test of the emergency broadcast system."),
        "7672622622872733320")
    end)

    it("to_decimal / from_decimal round trip", function()
      for _, kind in ipairs(CRCS) do
        local raw = checksum[kind]("round trip")
        local dec = checksum.to_decimal(raw)
        assert.matches("^%d+$", dec)
        assert.equals(raw, checksum.from_decimal(kind, dec))
      end
      assert.equals("18446744073709551615", checksum.to_decimal(("\255"):rep(8)))
      assert.equals(("\255"):rep(8), checksum.from_decimal("crc64nvme", "18446744073709551615"))
      assert.equals("0", checksum.to_decimal(("\0"):rep(4)))
    end)
  end)

  describe("implementations", function()
    it("the table path exists for every kind and the default is named", function()
      for _, kind in ipairs(CRCS) do
        assert.truthy(core.crc._compute_with(kind, "table", "x"))
        assert.is_string(core.crc.implementation(kind))
      end
      local ok, err = core.crc._compute_with("crc32", "sse4.2", "x")
      assert.is_nil(ok) -- the crc32 instruction is CRC-32C only
      assert.equals("NotAvailable", err.code)
      assert.matches("not available", err.message)
    end)

    for _, kind in ipairs(CRCS) do
      it(kind .. ": hardware and table paths agree on every length and alignment edge", function()
        local impls = implementations(kind)
        local big = big_bytes()
        local function agree(s)
          local want = core.crc._compute_with(kind, "table", s)
          for _, impl in ipairs(impls) do
            local got = core.crc._compute_with(kind, impl, s)
            if got ~= want then
              error(("%s: %s differs from table on %d bytes"):format(kind, impl, #s))
            end
          end
        end
        for n = 0, 600 do agree(big:sub(1 + n % 13, n + n % 13)) end
        for _, n in ipairs({ 1023, 1024, 1025, 4095, 65536 + 15, #big }) do
          agree(big:sub(#big - n + 1))
        end
        -- Streaming through the default path across the folding threshold.
        local obj = checksum.new(kind)
        for i = 1, #big, 333 do obj:update(big:sub(i, i + 332)) end
        assert.equals(core.crc._compute_with(kind, "table", big), obj:bytes())
      end)
    end
  end)

  describe("S3 multipart", function()
    it("ETag of the worked example", function()
      local md5s = {
        checksum.md5(("a"):rep(5242880)), checksum.md5(("b"):rep(5242880)), checksum.md5(("c"):rep(1024)),
      }
      assert.equals("c43647d2543bbb0984bac6210ff0eb6a-3", checksum.multipart_etag(md5s))
      local hex = {}
      for i, d in ipairs(md5s) do hex[i] = (i == 2) and checksum.tohex(d) or ('"' .. checksum.tohex(d) .. '"') end
      assert.equals("c43647d2543bbb0984bac6210ff0eb6a-3", checksum.multipart_etag(hex))
      assert.equals(checksum.md5_hex(md5s[1]) .. "-1", checksum.multipart_etag({ md5s[1] }))
    end)

    it("composite checksum", function()
      assert.equals("ziHdKg==-3", checksum.composite("crc32c", { "WpuOeg==", "JtMBsw==", "NnT7bQ==" }))
      local parts = { ("a"):rep(5242880), ("b"):rep(5242880), ("c"):rep(1024) }
      local raw = {}
      for i, p in ipairs(parts) do raw[i] = checksum.sha256(p) end
      assert.equals("G9WZRMJcxohd2raCdgUL9qAFqRoJjaOSbiRMnuGnXnI=-3", checksum.composite("sha256", raw))
    end)
  end)

  describe("misuse raises naming the argument", function()
    local function raises(pattern, f, ...)
      local ok, err = pcall(f, ...)
      assert.is_false(ok)
      -- blamed on the first Lua caller outside objstore (this function):
      -- the message without its "file:line: " prefix
      assert.matches(pattern, (tostring(err):gsub("^spec/checksum_spec%.lua:%d+: ", "")))
    end

    it("in the Lua API", function()
      raises("^objstore%.checksum%.new: argument #1 %(alg%): unknown algorithm 'sha3'", checksum.new, "sha3")
      raises("checksum%.new: argument #1 %(alg%): string expected, got nil", checksum.new)
      raises("checksum%.new: argument #2 %(init%): only CRCs", checksum.new, "md5", 1)
      raises("checksum%.sha256: argument #1 %(data%): string expected, got number", checksum.sha256, 42)
      raises("checksum%.digest: argument #2 %(data%): string expected, got table", checksum.digest, "crc32", {})
      raises("argument #2 %(key%): string expected", checksum.hmac, "sha256", nil, "x")
      raises("argument #1 %(alg%): unknown algorithm 'crc32'", checksum.hmac, "crc32", "k", "x")
      raises("argument #1 %(alg%): unknown algorithm 'md5'", checksum.combine, "md5", "a", "b", 1)
      raises("argument #1 %(md5s%): table expected", checksum.multipart_etag, "x")
      raises("argument #1 %(md5s%): at least one", checksum.multipart_etag, {})
      raises("argument #1 %(md5s%[2%]%): md5 digest expected", checksum.multipart_etag, { ("\0"):rep(16), "short" })
      raises("argument #2 %(digests%[1%]%): sha256 digest expected", checksum.composite, "sha256", { "nope" })
      raises("argument #2 %(parts%[1%]%.length%)", checksum.combine_parts, "crc32", { { crc = "abcd", length = -1 } })
      raises("argument #2 %(parts%[2%]%.crc%)", checksum.combine_parts, "crc32",
        { { crc = "abcd", length = 1 }, { crc = "abc" } })
      raises("argument #2 %(decimal%): not an unsigned decimal", checksum.from_decimal, "crc32", "4294967296")
      raises("%(decimal%): not an unsigned decimal", checksum.from_decimal, "crc64ecma", "18446744073709551616")
      raises("%(decimal%): not an unsigned decimal", checksum.from_decimal, "crc64ecma", "12a")
      raises("argument #1 %(bytes%): 4 or 8 raw", checksum.to_decimal, "abc")
    end)

    it("blaming the caller's line", function()
      local ok, err = pcall(function() checksum.sha256(42) end)
      assert.is_false(ok)
      assert.matches("^spec/checksum_spec%.lua:%d+: objstore%.checksum%.sha256: argument #1 %(data%)", err)
    end)

    it("in core.hash", function()
      raises("^objstore%.core%.hash%.new: argument #1 %(alg%): unknown hash algorithm 'crc32'", core.hash.new, "crc32")
      raises("hash%.new: argument #2 %(hmac_key%): string expected, got boolean", core.hash.new, "md5", true)
      raises("hash%.md5: argument #1 %(data%): string expected, got no value", core.hash.md5)
      raises("hash%.hmac: argument #2 %(key%): string expected, got number", core.hash.hmac, "sha1", 1, "x")
      raises("hash%.tohex: argument #1 %(bytes%): string expected, got no value", core.hash.tohex)
      local h = core.hash.new("md5")
      raises("^objstore%.core%.hash%.update: argument #1 %(data%): string expected, got number", h.update, h, 5)
      h:hexdigest()
      raises("^objstore%.core%.hash%.update: %(self%): the hash is finished", h.update, h, "more")
      h:close()
      raises("^objstore%.core%.hash%.digest: %(self%): the hash object is closed", h.digest, h)
      raises("^objstore%.core%.hash%.update: %(self%): the hash object is closed", h.update, h, "x")
      h:close() -- idempotent
      raises("hash%.update: %(self%): objstore%.hash expected, got userdata", h.update, core.crc.new("crc32"), "x")
      raises("hash%.update: %(self%): objstore%.hash expected, got table", h.update, {}, "x")
      raises("^objstore%.core%.hash%.file: argument #3 %(offset%): must be a whole number >= 0, got %-1$",
        core.hash.file, "md5", "/x", -1, 1)
      raises("hash%.file_async: argument #4 %(length%): must be a whole number >= 0, got 1%.5",
        core.hash.file_async, "md5", "/x", 0, 1.5)
      raises("hash%.file: argument #2 %(path%): string expected, got nil", core.hash.file, "md5", nil, 0, 1)
    end)

    it("in core.crc", function()
      raises("^objstore%.core%.crc%.new: argument #1 %(kind%): unknown CRC 'crc16'", core.crc.new, "crc16")
      raises("crc%.compute: argument #1 %(kind%): string expected, got nil", core.crc.compute, nil, "x")
      raises("argument #2 %(init%): not a crc32 value", core.crc.new, "crc32", 4294967296)
      raises("argument #2 %(init%): not a crc32 value", core.crc.new, "crc32", -1)
      raises("argument #2 %(init%): not a crc32 value", core.crc.new, "crc32", 1.5)
      raises("argument #2 %(init%): not an unsigned decimal", core.crc.new, "crc64ecma", "-1")
      raises("argument #2 %(init%): integer or decimal string expected, got table", core.crc.new, "crc32", {})
      raises("crc%.combine: argument #2 %(crc_a%): 4 raw big%-endian bytes", core.crc.combine, "crc32c", "abc",
        "abcd", 1)
      raises("argument #3 %(crc_b%): 8 raw big%-endian bytes", core.crc.combine, "crc64nvme", "abcdefgh", "abcd", 1)
      raises("argument #4 %(len_b%): non%-negative integer expected", core.crc.combine, "crc32", "abcd", "abcd", -1)
      raises("argument #4 %(len_b%): non%-negative integer expected", core.crc.combine, "crc32", "abcd", "abcd", 0.5)
      raises("%(len_b%): non%-negative integer expected, got string", core.crc.combine, "crc32", "abcd", "abcd", "1")
      raises("crc%._compute_with: argument #2 %(impl%): unknown implementation", core.crc._compute_with, "crc32",
        "avx", "x")
      local c = core.crc.new("crc32")
      raises("^objstore%.core%.crc%.update: argument #1 %(data%): string expected, got no value", c.update, c)
      c:close()
      raises("^objstore%.core%.crc%.update: %(self%): the crc object is closed", c.update, c, "x")
      raises("^objstore%.core%.crc%.value: %(self%): the crc object is closed", c.value, c)
      c:close()
      raises("crc%.update: %(self%): objstore%.crc expected, got userdata", c.update, core.hash.new("md5"), "x")
    end)

    it("in core.encode and core.time", function()
      raises("^objstore%.core%.encode%.uri_encode: argument #1 %(s%): string expected, got boolean",
        core.encode.uri_encode, true)
      raises("^objstore%.core%.encode%.iso8601: argument #1 %(time%): must be epoch seconds", core.encode.iso8601, -1)
      raises("^objstore%.core%.encode%.http_date: argument #1 %(time%): number expected, got table",
        core.encode.http_date, {})
      raises("^objstore%.core%.time%.sleep: argument #1 %(seconds%): must be between 0 and 86400", core.time.sleep, -1)
    end)
  end)

  describe("lifetime", function()
    it("__tostring names the type and state", function()
      local h = core.hash.new("sha1")
      assert.matches("^objstore%.hash %(sha1, active%)", tostring(h))
      h:digest()
      assert.matches("finished", tostring(h))
      h:close()
      assert.matches("closed", tostring(h))
      assert.matches("hmac%-sha256", tostring(core.hash.new("sha256", "k")))
      local c = core.crc.new("crc64ecma"):update("123456789")
      assert.equals("objstore.crc (crc64ecma, open): 11051210869376104954", tostring(c))
    end)

    it("garbage-collects many objects in any state without crashing", function()
      for round = 1, 3 do
        local keep = {}
        for i = 1, 5000 do
          local alg = checksum.ALGORITHMS[i % #checksum.ALGORITHMS + 1]
          local o = (i % 11 == 0 and not checksum.is_crc(alg)) and checksum.new_hmac(alg, "k" .. i) or checksum.new(alg)
          o:update("x")
          if i % 3 == 0 then o:digest() end
          if i % 5 == 0 then o:close() end
          if i % 7 == 0 then keep[#keep + 1] = (i % 5 ~= 0) and o:copy() or o end
        end
        collectgarbage()
        collectgarbage()
        assert.is_true(#keep > 0, "round " .. round)
      end
    end)

    if _VERSION == "Lua 5.4" then
      it("closes on scope exit (__close)", function()
        local chunk = assert(load([[
          local core = ...
          local seen
          do
            local h <close> = core.hash.new("sha256")
            seen = h
          end
          return seen
        ]]))
        local h = chunk(core)
        assert.matches("closed", tostring(h))
        assert.has_error(function() h:update("x") end)
      end)
    end
  end)
end)

describe("file-range digests (core.hash.file, file_async)", function()
  local hash = core.hash

  it("return a LocalFileError with the errno text for a missing file", function()
    local d, err = hash.file("sha256", "/nonexistent/objstore-spec", 0, 1)
    assert.is_nil(d)
    assert.equals(core.error_mt, getmetatable(err))
    assert.equals("LocalFileError", err.code)
    assert.matches("/nonexistent/objstore%-spec: No such file or directory", err.message)
    assert.is_false(err.retryable)
    assert.matches("^LocalFileError %- ", tostring(err))
  end)

  it("equal the digest of the same bytes, in C and on a thread", function()
    local path = os.tmpname()
    local t = {}
    for i = 1, 300000 do t[i] = string.char((i * 7919) % 256) end
    local data = table.concat(t)
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
    for _, r in ipairs{ { 0, #data }, { 1, 12345 }, { 299999, 1 }, { 5000, 0 } } do
      local want = hash.md5(data:sub(r[1] + 1, r[1] + r[2]))
      assert.equals(want, hash.file("md5", path, r[1], r[2]))
      assert.equals(want, hash.file_async("md5", path, r[1], r[2]):wait())
    end
    assert.equals(hash.sha256(data), hash.file("sha256", path, 0, #data))
    -- a range past the end is an error, not a short digest
    local d, err = hash.file("md5", path, #data - 10, 20)
    assert.is_nil(d)
    assert.equals("LocalFileError", err.code)
    assert.matches("shorter", err.message)
    d, err = hash.file_async("md5", path .. ".missing", 0, 1):wait()
    assert.is_nil(d)
    assert.equals(core.error_mt, getmetatable(err))
    assert.equals("LocalFileError", err.code)
    assert.matches("No such file", err.message)
    os.remove(path)
    assert.has_error(function() hash.file("md9", path, 0, 1) end)
    assert.has_error(function() hash.file("md5", path, -1, 1) end)
  end)
end)

describe("digests of many ranges (core.hash.ranges_async, the multi-buffer MD5)", function()
  local hash = core.hash
  local function raises(pattern, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert.matches(pattern, tostring(err))
  end
  local path, data
  setup(function()
    path = os.tmpname()
    local t = {}
    -- Not periodic within a block, so a lane reading another lane's bytes
    -- or a block twice gives another digest.
    local x = 12345
    for i = 1, 600000 do
      x = (x * 1103515245 + 12345) % 2147483648
      t[i] = string.char(math.floor(x / 65536) % 256)
    end
    data = table.concat(t)
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
  end)
  teardown(function() os.remove(path) end)

  -- Every padding case (0, 55, 56, 63, 64, 119, 120 bytes), a range across
  -- the 256 KiB read pieces, and more ranges than lanes of unequal lengths,
  -- so lanes end at different blocks and later batches reuse the engine.
  local function ranges()
    local r = {}
    for _, len in ipairs{ 0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 262144, 262145, 524289, 600000 } do
      r[#r + 1] = { (len * 31) % (600000 - len + 1), len }
    end
    for i = 1, 21 do r[#r + 1] = { i * 997, 4096 * i + i } end
    return r
  end

  for _, single in ipairs{ false, true } do
    it("equal each range's MD5 and CRCs" .. (single and ", one at a time" or ", eight in lock step"), function()
      local r = ranges()
      local md5s, nvmes, ecmas = assert(hash.ranges_async("md5", path, r, { "crc64nvme", "crc64ecma" }, single)):wait()
      assert.equals(#r, #md5s)
      for i, range in ipairs(r) do
        local want = data:sub(range[1] + 1, range[1] + range[2])
        assert.equals(hash.tohex(hash.md5(want)), hash.tohex(md5s[i]), "range " .. i .. " length " .. range[2])
        local _, nvme, ecma = hash.file_async("md5", path, range[1], range[2], { "crc64nvme", "crc64ecma" }):wait()
        assert.equals(nvme, nvmes[i])
        assert.equals(ecma, ecmas[i])
      end
    end)
  end

  it("gives SHA-256 digests and no CRC lists unless asked", function()
    local md, nvmes, ecmas = hash.ranges_async("sha256", path, { { 0, 100 }, { 7, 70000 } }):wait()
    assert.equals(hash.sha256(data:sub(1, 100)), md[1])
    assert.equals(hash.sha256(data:sub(8, 70007)), md[2])
    assert.is_nil(nvmes)
    assert.is_nil(ecmas)
    local _, n2, e2 = hash.ranges_async("md5", path, { { 0, 1 }, { 1, 1 } }, { "crc64ecma" }):wait()
    assert.is_nil(n2)
    assert.equals(2, #e2)
  end)

  it("fails with LocalFileError for a range past the end or a missing file; raises for bad ranges", function()
    local md, err = hash.ranges_async("md5", path, { { 0, 10 }, { #data - 5, 10 } }):wait()
    assert.is_nil(md)
    assert.equals(core.error_mt, getmetatable(err))
    assert.equals("LocalFileError", err.code)
    assert.matches("shorter", err.message)
    md, err = hash.ranges_async("md5", path .. ".missing", { { 0, 1 }, { 1, 1 } }):wait()
    assert.is_nil(md)
    assert.matches("No such file", err.message)
    raises("ranges_async: argument #3 %(ranges%): must hold 1 to 100000 ranges", hash.ranges_async, "md5", path, {})
    raises("ranges_async: argument #3 %(ranges%): must hold {offset, length} pairs", hash.ranges_async, "md5", path,
      { 5 })
    raises("ranges_async: argument #3 %(ranges%[i%]%[2%] %(length%)%): must be a whole number >= 0, got %-1",
      hash.ranges_async, "md5", path, { { 0, -1 } })
    raises("ranges_async: argument #5 %(single%)", hash.ranges_async, "md5", path, { { 0, 1 } }, nil, "yes")
  end)
end)

-- Issue 18: an nginx worker must never wait in pthread_join. job:done()
-- tells, without blocking, whether the hashing thread has finished;
-- objstore.hashjob polls it between ngx.sleeps where nginx can yield.
describe("hashing job state without blocking (job:done, objstore.hashjob)", function()
  local hash, hashjob = core.hash, require "objstore.hashjob"
  local path, size
  -- Enough hashing (64 x 1 MiB ranges, twice over: MD5 and two CRCs) that
  -- the thread is still running right after the start.
  local RANGES = {}
  setup(function()
    path = os.tmpname()
    local block = {}
    for i = 1, 4096 do block[i] = string.char((i * 7919) % 256) end
    block = table.concat(block):rep(256) -- 1 MiB
    local f = assert(io.open(path, "wb"))
    for _ = 1, 4 do f:write(block) end
    f:close()
    size = 4 * #block
    for i = 1, 64 do RANGES[i] = { (i % 4) * 65536, size - 4 * 65536 } end
  end)
  teardown(function()
    os.remove(path)
    rawset(_G, "ngx", nil)
  end)

  local function fake_ngx(phase)
    local t = { sleeps = {} }
    t.get_phase = function() return phase end
    t.sleep = function(s)
      t.sleeps[#t.sleeps + 1] = s
      core.time.sleep(s)
    end
    return t
  end

  it("done() is false while the thread runs and true once it has finished; wait() then does not block", function()
    local job = assert(hash.ranges_async("md5", path, RANGES, { "crc64nvme", "crc64ecma" }))
    assert.is_false(job:done())
    local polls, t0 = 0, core.time.monotonic()
    while not job:done() do
      polls = polls + 1
      core.time.sleep(0.001)
      assert.is_true(core.time.monotonic() - t0 < 30, "the job never finished")
    end
    assert.is_true(polls > 0)
    t0 = core.time.monotonic()
    local md5s, nvmes = job:wait()
    assert.is_true(core.time.monotonic() - t0 < 0.05, "wait blocked after done()")
    assert.equals(64, #md5s)
    assert.equals(64, #nvmes)
    assert.equals(hash.file("md5", path, RANGES[1][1], RANGES[1][2]), md5s[1])
    assert.is_true(job:done()) -- and stays so after the join
    -- a job that fails finishes too, with the error from wait
    job = hash.file_async("md5", path .. ".missing", 0, 1)
    t0 = core.time.monotonic()
    while not job:done() do
      core.time.sleep(0.001)
      assert.is_true(core.time.monotonic() - t0 < 10)
    end
    local d, err = job:wait()
    assert.is_nil(d)
    assert.equals("LocalFileError", err.code)
    assert.has_error(function() hash.ranges_async("md5", path, { { 0, 1 } }).done(nil) end)
  end)

  it("a job collected while its thread runs is left to the thread: the collection does not wait", function()
    local job = assert(hash.ranges_async("md5", path, RANGES, { "crc64nvme", "crc64ecma" }))
    assert.is_false(job:done())
    local t0 = core.time.monotonic()
    job = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    local gc = core.time.monotonic() - t0
    -- a join would wait for the whole job (the test above: > 1 poll of 1 ms)
    local again = assert(hash.ranges_async("md5", path, RANGES, { "crc64nvme", "crc64ecma" }))
    t0 = core.time.monotonic()
    local md5s = again:wait()
    local whole = core.time.monotonic() - t0
    assert.equals(64, #md5s)
    assert.is_true(gc < whole / 2, string.format("collecting a running job took %.1f ms (a job: %.1f ms)",
      gc * 1000, whole * 1000))
    -- a released job raises on use (only reachable through the metatable)
    getmetatable(again).__gc(again)
    local ok, err = pcall(again.done, again)
    assert.is_false(ok)
    assert.matches("hash%.done: %(self%): the hashing job is released", err)
    assert.has_error(function() again:wait() end)
    getmetatable(again).__gc(again) -- idempotent
  end)

  it("hashjob.wait yields with ngx.sleep (1 ms doubling to 10 ms) in a request phase, joins elsewhere", function()
    rawset(_G, "ngx", fake_ngx("content"))
    local polls = {}
    local md5s = hashjob.wait(assert(hash.ranges_async("md5", path, RANGES, { "crc64nvme" })), polls)
    local sleeps = _G.ngx.sleeps
    assert.equals(64, #md5s)
    assert.is_true(#sleeps > 0 and polls.n == #sleeps, "no polls")
    assert.equals(0.001, sleeps[1])
    for i, s in ipairs(sleeps) do
      assert.is_true(s <= 0.01 and (i == 1 or s >= sleeps[i - 1]), "sleep " .. i .. ": " .. s)
    end
    for _, phase in ipairs{ "init_worker", "log", "header_filter" } do
      rawset(_G, "ngx", fake_ngx(phase))
      polls = {}
      assert.equals(64, #hashjob.wait(hash.ranges_async("md5", path, RANGES), polls))
      assert.equals(0, #_G.ngx.sleeps, phase)
      assert.is_nil(polls.n)
    end
    rawset(_G, "ngx", nil)
    polls = {}
    assert.equals(64, #hashjob.wait(hash.ranges_async("md5", path, RANGES), polls))
    assert.is_nil(polls.n)
  end)

  it("hashjob.file gives core.hash.file's digest and errors, on a thread polled in a request phase", function()
    local want = hash.file("sha256", path, 5, size - 5)
    rawset(_G, "ngx", fake_ngx("timer"))
    -- On a thread, each poll that found it running a sleep (a thread may
    -- finish before the first poll: no sleep then, which is no failure).
    local polls = {}
    assert.equals(want, hashjob.file("sha256", path, 5, size - 5, polls))
    assert.is_true(polls.thread)
    assert.equals(polls.n or 0, #_G.ngx.sleeps)
    local d, err = hashjob.file("md5", path, size - 1, 2)
    assert.is_nil(d)
    assert.equals("LocalFileError", err.code)
    assert.matches("shorter", err.message)
    rawset(_G, "ngx", nil)
    assert.equals(want, hashjob.file("sha256", path, 5, size - 5))
    d, err = hashjob.file("md5", path .. ".missing", 0, 1)
    assert.is_nil(d)
    assert.equals("LocalFileError", err.code)
  end)
end)
