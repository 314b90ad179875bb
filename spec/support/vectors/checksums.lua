-- Vector handler for checksum files (spec/fixtures/vectors/checksums/).
-- Claims three shapes, whatever the file is called:
--   CRC list:       { vectors = { { input_ascii | parts_ascii, expected_* ... } } }
--   per algorithm:  { <alg> = { { name, input_ascii, expected_* } ... }, notes? }
--   multipart:      { worked_example = { parts, expected_etag } | composite_checksum_rule
--                     | single_part_example }
-- Every expectation in a claimed file is checked; one this handler does not
-- know is a failure, never a skip.
local checksum = require "objstore.checksum"

local ALGS = {}
for _, alg in ipairs(checksum.ALGORITHMS) do ALGS[alg] = true end

local function is_list_of_tables(t)
  if type(t) ~= "table" or #t == 0 then return false end
  for _, v in ipairs(t) do
    if type(v) ~= "table" then return false end
  end
  return true
end

local function has_expected_key(t)
  for k in pairs(t) do
    if type(k) == "string" and k:match("^expected_") then return true end
  end
  return false
end

local function is_crc_list(doc)
  if not is_list_of_tables(doc.vectors) then return false end
  for _, v in ipairs(doc.vectors) do
    if not ((v.input_ascii or v.parts_ascii) and has_expected_key(v)) then return false end
  end
  return true
end

-- A per-algorithm case list: tables with input_ascii and some expected_*.
local function is_case_list(t)
  if not is_list_of_tables(t) then return false end
  for _, v in ipairs(t) do
    if type(v.input_ascii) ~= "string" or not has_expected_key(v) then return false end
  end
  return true
end

local function is_per_algorithm(doc)
  local found = false
  for k, v in pairs(doc) do
    if ALGS[k] and is_case_list(v) then found = true end
  end
  return found
end

local function is_multipart(doc)
  local w = doc.worked_example
  return (type(w) == "table" and type(w.parts) == "table" and w.expected_etag ~= nil)
    or type(doc.composite_checksum_rule) == "table"
    or (type(doc.single_part_example) == "table" and doc.single_part_example.content ~= nil)
end

-- ---- helpers ---------------------------------------------------------------

-- "0x995DC9BB..." and "995dc9bb..." compare equal.
local function norm_hex(s)
  if type(s) ~= "string" then return s end
  return (s:gsub("^0[xX]", "")):lower()
end

-- a - b for decimal strings with a >= b.
local function dec_sub(a, b)
  local out, borrow = {}, 0
  b = string.rep("0", #a - #b) .. b
  for i = #a, 1, -1 do
    local d = a:byte(i) - b:byte(i) - borrow
    if d < 0 then d, borrow = d + 10, 1 else borrow = 0 end
    out[#out + 1] = string.char(48 + d)
  end
  local s = table.concat(out):reverse():gsub("^0+", "")
  return s == "" and "0" or s
end

-- Java's signed long of an unsigned 64-bit decimal.
local function signed_int64(dec)
  local limit = "9223372036854775807"
  if #dec < #limit or (#dec == #limit and dec <= limit) then return dec end
  return "-" .. dec_sub("18446744073709551616", dec)
end

-- Runs fn(check, fail, consistent) as one named case: passes when every
-- comparison passed and at least one check compared objstore's output
-- with an expectation. consistent() compares the fixture with itself (a
-- length it states, a part number): a mismatch fails the case, but such a
-- comparison never counts as checking objstore.
local function run_case(ctx, name, fn)
  local checked, ok = 0, true
  local function check(what, got, want)
    if want == nil or want == ctx.null then return end
    checked = checked + 1
    if not ctx.check(name, what, got, want) then ok = false end
  end
  local function consistent(what, a, b)
    if b == nil or b == ctx.null then return end
    if not ctx.check(name, what .. " (fixture consistency)", a, b) then ok = false end
  end
  local function fail(msg) error({ msg = msg }, 0) end
  local good, err = pcall(fn, check, fail, consistent)
  if not good then
    ctx.fail(name, type(err) == "table" and err.msg or tostring(err))
  elseif checked == 0 then
    ctx.fail(name, "no expectation this handler can check")
  elseif ok then
    ctx.pass(name)
  end
end

-- Fails on any expected_* key that the caller did not list as handled.
local function reject_unknown(t, known, fail)
  for k in pairs(t) do
    if type(k) == "string" and k:match("^expected_") and not known[k] then
      fail("unknown expectation '" .. k .. "'")
    end
  end
end

-- Streaming in 1..3-byte steps must agree with the one-shot digest.
local function streamed(alg, s, init)
  local obj = assert(checksum.new(alg, init))
  local i, step = 1, 1
  while i <= #s do
    obj:update(s:sub(i, i + step - 1))
    i = i + step
    step = step % 3 + 1
  end
  return obj
end

-- ---- CRC list (crc64ecma.json) ------------------------------------------------

local function crc_list_alg(doc)
  local a = type(doc.algorithm) == "string" and doc.algorithm:upper() or ""
  if a:find("NVME", 1, true) then return "crc64nvme" end
  if a:find("CRC-64/XZ", 1, true) or a:find("ECMA", 1, true) then return "crc64ecma" end
  if a:find("CRC-32C", 1, true) or a:find("CASTAGNOLI", 1, true) then return "crc32c" end
  if a:find("CRC-32", 1, true) then return "crc32" end
  return nil
end

local SINGLE_KEYS = {
  expected_hex = true, expected_unsigned_decimal = true, expected_signed_int64 = true, expected_base64_be = true,
}
local COMBINE_KEYS = { expected_combined_hex = true, expected_combined_unsigned_decimal = true }

local function crc_single(alg, v, check, fail, consistent)
  reject_unknown(v, SINGLE_KEYS, fail)
  local init = v.init
  if init == 0 then init = nil end
  local obj = checksum.new(alg, init)
  obj:update(v.input_ascii)
  local dec = obj:decimal()
  check("hex", obj:hex(), norm_hex(v.expected_hex))
  check("unsigned decimal", dec, v.expected_unsigned_decimal)
  check("signed int64", signed_int64(dec), v.expected_signed_int64)
  check("base64", obj:base64(), v.expected_base64_be)
  consistent("input_len", #v.input_ascii, v.input_len)
  check("streamed", streamed(alg, v.input_ascii, init):decimal(), dec)
  if v.equals_crc_of ~= nil then
    check("equals_crc_of", checksum[alg .. "_decimal"](v.equals_crc_of), dec)
    if init ~= nil then
      -- init continues a message: it must be the CRC of the part before this one.
      local prefix = v.equals_crc_of:sub(1, #v.equals_crc_of - #v.input_ascii)
      local init_dec = checksum.new(alg, init):decimal()
      check("init is CRC of the prefix", checksum[alg .. "_decimal"](prefix), init_dec)
      check("combine(prefix, input)",
        checksum.combine_decimal(alg, init_dec, checksum[alg .. "_decimal"](v.input_ascii), #v.input_ascii), dec)
    end
  end
end

local function crc_combine(alg, v, check, fail, consistent)
  reject_unknown(v, COMBINE_KEYS, fail)
  local parts = v.parts_ascii
  if not (type(parts) == "table" and #parts >= 2) then fail("parts_ascii: two or more parts expected") end
  local list, whole = {}, table.concat(parts)
  for i, p in ipairs(parts) do
    list[i] = { crc = checksum[alg](p), length = #p }
    if type(v.part_crcs_hex) == "table" then
      check("part " .. i .. " hex", checksum.tohex(list[i].crc), norm_hex(v.part_crcs_hex[i]))
    end
  end
  consistent("second_part_len", #parts[2], v.second_part_len)
  local combined = checksum.combine_parts(alg, list)
  local want_hex = norm_hex(v.expected_combined_hex)
  check("combined hex", checksum.tohex(combined), want_hex)
  check("combined decimal", checksum.to_decimal(combined), v.expected_combined_unsigned_decimal)
  -- The rule's two other sides: the CRC of the concatenation, and chaining
  -- each part onto the previous CRC as init.
  check("crc of concatenation", checksum[alg .. "_hex"](whole), want_hex)
  local chained = checksum.new(alg)
  for _, p in ipairs(parts) do chained = checksum.new(alg, chained:decimal()):update(p) end
  check("chained via init", chained:hex(), want_hex)
end

local function run_crc_list(doc, ctx)
  local alg = crc_list_alg(doc)
  for i, v in ipairs(doc.vectors) do
    local name = (alg or "?") .. "/" .. tostring(v.name or i)
    run_case(ctx, name, function(check, fail, consistent)
      if not alg then fail("cannot tell the CRC from algorithm: " .. tostring(doc.algorithm)) end
      if v.parts_ascii ~= nil then
        crc_combine(alg, v, check, fail, consistent)
      elseif type(v.input_ascii) == "string" then
        crc_single(alg, v, check, fail, consistent)
      else
        fail("case has neither input_ascii nor parts_ascii")
      end
    end)
  end
end

-- ---- per algorithm (s3-checksums.json) ----------------------------------------

local ALG_KEYS = { expected_hex = true, expected_base64_be = true, expected_base64 = true,
  expected_unsigned_decimal = true }

local function run_per_algorithm(doc, ctx)
  local keys = {}
  for k in pairs(doc) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, alg in ipairs(keys) do
    local cases = doc[alg]
    if is_case_list(cases) then
      for i, v in ipairs(cases) do
        run_case(ctx, alg .. "/" .. tostring(v.name or i), function(check, fail)
          if not ALGS[alg] then fail("unknown algorithm '" .. alg .. "'") end
          reject_unknown(v, ALG_KEYS, fail)
          local raw = checksum[alg](v.input_ascii)
          check("hex", checksum.tohex(raw), norm_hex(v.expected_hex))
          check("base64", checksum.tobase64(raw), v.expected_base64_be)
          check("base64", checksum.tobase64(raw), v.expected_base64)
          if checksum.is_crc(alg) then
            check("decimal", checksum.to_decimal(raw), v.expected_unsigned_decimal)
          elseif v.expected_unsigned_decimal ~= nil then
            fail("expected_unsigned_decimal on a hash")
          end
          check("streamed", streamed(alg, v.input_ascii):digest(), raw)
        end)
      end
    elseif alg ~= "notes" and type(cases) == "table" and #cases > 0 then
      ctx.fail(alg, "list under '" .. alg .. "' is not a list of {input_ascii, expected_*} cases")
    end
  end
end

-- ---- multipart (multipart-etag.json) -------------------------------------------

-- "5 MiB (5242880 bytes) of ASCII \"a\"" or "1024 bytes of ASCII \"c\"".
local function part_content(desc)
  if type(desc) ~= "string" then return nil end
  local n, ch = desc:match("(%d+) bytes%)? of ASCII \"(.)\"")
  if not n then return nil end
  return ch:rep(tonumber(n))
end

local function run_multipart(doc, ctx)
  local w = doc.worked_example
  local contents, built = {}, 0
  if w ~= nil then
    local raw_md5s = {}
    for i, p in ipairs(w.parts or {}) do
      run_case(ctx, ("worked_example/part-%d"):format(p.part_number or i), function(check, fail, consistent)
        local content = part_content(p.content)
        if not content then fail("cannot build content from: " .. tostring(p.content)) end
        consistent("part_number", p.part_number, i)
        contents[i] = content
        built = built + 1
        raw_md5s[i] = checksum.md5(content)
        check("md5_hex", checksum.tohex(raw_md5s[i]), p.md5_hex)
        check("etag", '"' .. checksum.tohex(raw_md5s[i]) .. '"', p.etag)
      end)
    end
    run_case(ctx, "worked_example/etag", function(check, fail)
      if built ~= #(w.parts or {}) or built == 0 then fail("parts could not be built") end
      reject_unknown(w, { expected_etag = true, expected_etag_header = true }, fail)
      check("concatenated binary md5s", checksum.tohex(table.concat(raw_md5s)), w.concatenated_binary_md5_hex)
      local etag = checksum.multipart_etag(raw_md5s)
      check("etag", etag, w.expected_etag)
      check("etag header", '"' .. etag .. '"', w.expected_etag_header)
      -- The same from the hex ETags the parts came back with.
      local quoted = {}
      for i, p in ipairs(w.parts) do quoted[i] = p.etag end
      check("etag from quoted part ETags", checksum.multipart_etag(quoted), w.expected_etag)
      if w.whole_object_md5_hex_for_contrast ~= nil then
        local h = checksum.new("md5")
        for _, c in ipairs(contents) do h:update(c) end
        local whole = h:hexdigest()
        check("whole-object md5", whole, w.whole_object_md5_hex_for_contrast)
        if etag:sub(1, 32) == whole then fail("multipart ETag equals the whole-object MD5") end
      end
    end)
  end

  local rule = doc.composite_checksum_rule
  if type(rule) == "table" then
    local seen, keys = false, {}
    for k in pairs(rule) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local want = rule[k]
      local alg = k:match("^worked_example_(%w+)$")
      if alg then
        seen = true
        run_case(ctx, "composite/" .. alg, function(check, fail)
          if not ALGS[alg] then fail("unknown algorithm '" .. alg .. "'") end
          if built == 0 or built ~= #(w and w.parts or {}) then
            fail("composite example needs the worked_example parts")
          end
          local digests = {}
          for i, c in ipairs(contents) do digests[i] = checksum[alg](c) end
          local given = rule["part_" .. alg .. "_base64"]
          if given ~= nil then
            for i = 1, #contents do check("part " .. i .. " base64", checksum.tobase64(digests[i]), given[i]) end
            check("composite from given base64", checksum.composite(alg, given), want)
          end
          check("composite", checksum.composite(alg, digests), want)
        end)
      elseif k:match("^part_(%w+)_base64$") then
        local a = k:match("^part_(%w+)_base64$")
        if rule["worked_example_" .. a] == nil then
          ctx.fail("composite/" .. a, "part digests given without a worked_example_" .. a)
        end
      elseif k ~= "rule" then
        ctx.fail("composite/" .. k, "unknown key in composite_checksum_rule")
      end
    end
    if not seen then ctx.fail("composite", "composite_checksum_rule has no worked_example_<alg>") end
  end

  local single = doc.single_part_example
  if type(single) == "table" then
    run_case(ctx, "single_part_example", function(check, fail)
      if type(single.content) ~= "string" then fail("content: string expected") end
      for k, want in pairs(single) do
        local alg, form = nil, nil
        if type(k) == "string" then alg, form = k:match("^(%w+)_(%w+)$") end
        if alg and ALGS[alg] then
          if form == "hex" then
            check(k, checksum[alg .. "_hex"](single.content), want)
          elseif form == "base64" then
            check(k, checksum[alg .. "_base64"](single.content), want)
          else
            fail("unknown form '" .. k .. "'")
          end
        elseif k ~= "content" and k ~= "note" and k ~= "notes" then
          fail("unknown key '" .. tostring(k) .. "'")
        end
      end
      -- A single-part upload's ETag is the plain MD5, not the "-N" form.
      if single.md5_hex then
        check("single-part etag", checksum.md5_hex(single.content), single.md5_hex)
      end
    end)
  end
end

return {
  name = "checksums",
  claims = function(_, doc)
    if type(doc) ~= "table" then return false end
    return is_crc_list(doc) or is_per_algorithm(doc) or is_multipart(doc)
  end,
  run = function(doc, ctx)
    if is_crc_list(doc) then
      run_crc_list(doc, ctx)
    elseif is_per_algorithm(doc) then
      run_per_algorithm(doc, ctx)
    else
      run_multipart(doc, ctx)
    end
  end,
}
