-- Vector handler for the S3/OSS XML response samples (spec/fixtures/vectors/xml).
--
-- Claims, by shape:
-- * a case file { file = "<name>.xml", root, parsed = {...}, must_extract = {...}, ... }
--   (see spec/fixtures/vectors/README.md, "XML"), and
-- * an index: a non-empty JSON array of { file = "<path>.xml", root }.
--
-- Each case file runs these checks, each reported as its own pass or fail:
-- * root            the root element's local name and namespace URI;
-- * parsed          the generic tree (objstore.xml.parse_tree), converted to
--                   the mechanical shape that `parsed_shape` describes, equals
--                   `parsed` exactly;
-- * must_extract    every entry, read as a small path language (below);
-- * url_decoded     every value, looked up in
--                   xml.decode_url_fields(xml.parse(s)) with the path mapped
--                   mechanically (Deleted[0].Key -> deleted[1].key);
-- * botocore_expected_parse / sdk_expected (see compare_sdk).
-- An index runs one check per listed file: it parses and has that root.
local xml = require "objstore.xml"

local H = { name = "xml" }

local function is_xml_name(s)
  return type(s) == "string" and s:match("%.xml$") ~= nil
end

local function is_case(doc)
  return type(doc) == "table" and is_xml_name(doc.file) and type(doc.root) == "string"
    and type(doc.parsed) == "table" and type(doc.must_extract) == "table"
end

local function is_index(doc)
  if type(doc) ~= "table" or #doc == 0 then return false end
  for _, e in ipairs(doc) do
    if type(e) ~= "table" or not is_xml_name(e.file) or type(e.root) ~= "string" then return false end
  end
  return true
end

function H.claims(_, doc)
  return is_case(doc) or is_index(doc)
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

-- Deep comparison. exact: got may have no keys want lacks. key_map maps a
-- want key to the got key (identity for `parsed`, snake_case for SDK
-- expectations). null is cjson.null (an absent value). Returns nil or a
-- description of the first difference.
local function diff(got, want, path, exact, key_map, null)
  if want == null then want = nil end
  if type(want) ~= "table" then
    if got == want then return nil end
    return string.format("%s: got %s, want %s", path, show(got), show(want))
  end
  if type(got) ~= "table" then
    return string.format("%s: got %s, want a table", path, show(got))
  end
  if #want > 0 or next(want) == nil then
    -- an array (or an empty table, which cjson gives for both [] and {})
    if #got ~= #want then
      return string.format("%s: got %d entries, want %d", path, #got, #want)
    end
    if #want > 0 then
      for i = 1, #want do
        local d = diff(got[i], want[i], path .. "[" .. i .. "]", exact, key_map, null)
        if d then return d end
      end
      return nil
    end
  end
  for k, w in pairs(want) do
    local gk = key_map(k)
    local d = diff(got[gk], w, path .. "." .. gk, exact, key_map, null)
    if d then return d end
  end
  if exact then
    local wanted = {}
    for k in pairs(want) do wanted[key_map(k)] = true end
    for k in pairs(got) do
      if not wanted[k] then return string.format("%s: unexpected field %s", path, tostring(k)) end
    end
  end
  return nil
end

local function identity(k)
  return k
end

-------------------------------------------------------------------------------
-- parsed: the mechanical element-text tree that `parsed_shape` describes:
-- "element text as string; elements that may repeat (A, B, C-in-P, ...) are
-- always lists; other repeated siblings become lists".

local function shape_rules(shape)
  if type(shape) ~= "string" then return nil, "parsed_shape is missing" end
  local inner = shape:match("are always lists") and shape:match("%((.-)%)")
  if not inner or not shape:find("element text as string", 1, true)
    or not shape:find("other repeated siblings become lists", 1, true) then
    return nil, "parsed_shape not understood: " .. shape
  end
  local rules = { always = {}, within = {} }
  for item in inner:gmatch("[^,]+") do
    item = trim(item)
    local name, parent = item:match("^(%w+)%-in%-(%w+)$")
    if name then
      rules.within[name] = parent
    elseif item:match("^%w+$") then
      rules.always[item] = true
    else
      return nil, "parsed_shape list entry not understood: " .. item
    end
  end
  return rules
end

local function mechanical(node, rules)
  if #node == 0 then return node.text end
  local count, out = {}, {}
  for _, c in ipairs(node) do count[c.name] = (count[c.name] or 0) + 1 end
  for _, c in ipairs(node) do
    local v = mechanical(c, rules)
    if rules.always[c.name] or rules.within[c.name] == node.name or count[c.name] > 1 then
      local arr = out[c.name] or {}
      arr[#arr + 1] = v
      out[c.name] = arr
    else
      out[c.name] = v
    end
  end
  return out
end

-------------------------------------------------------------------------------
-- must_extract entries are prose-like paths. Understood forms:
--   Name, A.B, A[].B             every node reached has the next child
--                                (a first step that is not a child of the
--                                root is looked up anywhere: "Permission")
--   A.B@xsi:type                 an attribute (matched by local name)
--   A.{B,C.D}                    each of A.B and A.C.D
--   A.B / A.C                    every A has a B or a C
--   Name=value                   every Name has that text
--   "... (x|y|z)" or "(...: x|y)" every value is one of x, y, z
--   "(other prose)"              a comment, dropped
--   "<anything>: no Name"        no Name element anywhere
--   "empty markers"              every root child named *Marker is empty
--   "P empty element -> null"    some P is empty; objstore keeps "" for it
--                                (as botocore does); the SDK's null is its
--                                own model choice
--   "P1/P2/... are URL-encoded"  each resolves, and xml.decode_url_fields
--                                decodes each value (checked against an
--                                independent unquote_plus)
-- Anything else fails as "not understood", never passes silently.

local function kids(node, name)
  local r = {}
  for _, c in ipairs(node) do
    if c.name == name then r[#r + 1] = c end
  end
  return r
end

local function descendants(node, name, out)
  for _, c in ipairs(node) do
    if c.name == name then out[#out + 1] = c end
    descendants(c, name, out)
  end
  return out
end

local function step_name(seg)
  return (seg:gsub("%[%]$", ""))
end

-- Returns the nodes (or attribute strings) a path reaches, or nil, err.
local function resolve(root, path)
  local steps = {}
  for seg in path:gmatch("[^%.]+") do steps[#steps + 1] = seg end
  if #steps == 0 then return nil, "empty path" end
  local attr
  local base, a = steps[#steps]:match("^(.-)@(.+)$")
  if base then
    steps[#steps] = base
    attr = a:match(":(.+)$") or a
  end
  local nodes, from
  local first = step_name(steps[1])
  if #kids(root, first) > 0 then
    nodes, from = { root }, 1
  else
    nodes, from = descendants(root, first, {}), 2
    if #nodes == 0 then return nil, "no <" .. first .. "> element" end
  end
  for j = from, #steps do
    local name = step_name(steps[j])
    local nxt = {}
    for _, n in ipairs(nodes) do
      local k = kids(n, name)
      if #k == 0 then return nil, "a <" .. n.name .. "> has no <" .. name .. ">" end
      for _, c in ipairs(k) do nxt[#nxt + 1] = c end
    end
    nodes = nxt
  end
  if attr then
    local vals = {}
    for _, n in ipairs(nodes) do
      local v = n.attr and n.attr[attr]
      if v == nil then return nil, "a <" .. n.name .. "> has no attribute " .. attr end
      vals[#vals + 1] = v
    end
    return vals
  end
  return nodes
end

local function value_of(v)
  if type(v) == "table" then return v.text end
  return v
end

-- An independent reference for EncodingType=url values (Python's unquote_plus).
local function unquote_plus(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Looks a tree path up in an xml.parse result: A[].B -> every result.a[i].b.
local function result_values(result, path)
  local cur = { result }
  for seg in path:gmatch("[^%.]+") do
    local key = xml.snake(step_name(seg))
    local nxt = {}
    for _, t in ipairs(cur) do
      local v = type(t) == "table" and t[key] or nil
      if seg:match("%[%]$") then
        if type(v) ~= "table" then return nil, "result has no list " .. key end
        for _, e in ipairs(v) do nxt[#nxt + 1] = e end
      else
        if v == nil then return nil, "result has no " .. key end
        nxt[#nxt + 1] = v
      end
    end
    cur = nxt
  end
  return cur
end

local function check_paths(root, paths)
  local all = {}
  for _, p in ipairs(paths) do
    local vals, err = resolve(root, p)
    if not vals then return nil, p .. ": " .. err end
    for _, v in ipairs(vals) do all[#all + 1] = v end
  end
  return all
end

local function interpret(entry, root, decoded)
  local choices
  for p in entry:gmatch("%b()") do
    local last = p:sub(2, -2):match("([^%s:]+)%s*$")
    if last and last:find("|", 1, true) and last:match("^[%w%-|]+$") then
      choices = {}
      for c in last:gmatch("[^|]+") do choices[c] = true end
    end
  end
  local text = trim((entry:gsub("%s*%b()", "")))
  local vals, err

  local absent = text:match("^.-:%s*no%s+(%w+)$")
  if absent then
    if #descendants(root, absent, {}) > 0 then return false, "found <" .. absent .. ">" end
    local v = decoded[xml.snake(absent)]
    if v ~= nil and not (type(v) == "table" and next(v) == nil) then
      return false, "xml.parse gives a non-empty " .. xml.snake(absent)
    end
    return true
  end

  if text == "empty markers" then
    local n = 0
    for _, c in ipairs(root) do
      if c.name:match("Marker$") then
        n = n + 1
        if #c > 0 or c.text ~= "" then return false, "<" .. c.name .. "> is not empty" end
      end
    end
    if n == 0 then return false, "no *Marker elements" end
    return true
  end

  local nullable = text:match("^(%S+) empty element %-> null$")
  if nullable then
    vals, err = resolve(root, nullable)
    if not vals then return false, err end
    for _, v in ipairs(vals) do
      if type(v) == "table" and #v == 0 and v.text == "" then return true end
    end
    return false, "no empty <" .. nullable .. ">"
  end

  local encoded = text:match("^(%S+) are URL%-encoded$")
  if encoded then
    for p in encoded:gmatch("[^/]+") do
      vals, err = resolve(root, p)
      if not vals then return false, p .. ": " .. err end
      local got, rerr = result_values(decoded, p)
      if not got then return false, p .. ": " .. rerr end
      if #got ~= #vals then return false, p .. ": " .. #got .. " decoded values for " .. #vals .. " elements" end
      for i, v in ipairs(vals) do
        local want = unquote_plus(value_of(v))
        if got[i] ~= want then return false, p .. ": decoded " .. show(got[i]) .. ", want " .. show(want) end
      end
    end
    return true
  end

  if text:find(" / ", 1, true) then
    local alts, parents = {}, {}
    for alt in (text .. " / "):gmatch("(.-) / ") do
      alt = trim(alt)
      local parent, last = alt:match("^(.*)%.([^%.]+)$")
      alts[#alts + 1] = { path = alt, parent = parent, last = last }
      parents[parent or ""] = true
    end
    local nparents = 0
    for _ in pairs(parents) do nparents = nparents + 1 end
    if nparents == 1 and alts[1].parent then
      local nodes
      nodes, err = resolve(root, alts[1].parent)
      if not nodes then return false, err end
      for _, n in ipairs(nodes) do
        local ok = false
        for _, a in ipairs(alts) do
          if #kids(n, step_name(a.last)) > 0 then ok = true end
        end
        if not ok then return false, "a <" .. n.name .. "> has none of the alternatives" end
      end
      return true
    end
    for _, a in ipairs(alts) do
      if resolve(root, a.path) then return true end
    end
    return false, "none of the alternatives resolves"
  end

  local prefix, items = text:match("^([^{]*){(.*)$")
  if prefix then
    local paths = {}
    for item in items:gsub("[{}]", ""):gmatch("[^,]+") do paths[#paths + 1] = prefix .. trim(item) end
    vals, err = check_paths(root, paths)
  else
    local path, want = text:match("^([%w%.%[%]@:]+)=(%S+)$")
    if path then
      vals, err = resolve(root, path)
      if not vals then return false, err end
      for _, v in ipairs(vals) do
        if value_of(v) ~= want then return false, path .. " is " .. show(value_of(v)) end
      end
      return true
    elseif text:match("^[%w%.%[%]@:]+$") then
      vals, err = resolve(root, text)
    else
      return false, "must_extract entry not understood"
    end
  end
  if not vals then return false, err end
  if choices then
    for _, v in ipairs(vals) do
      local s = value_of(v)
      if not choices[s] then return false, "value " .. show(s) .. " is not one of the listed choices" end
    end
  end
  return true
end

-------------------------------------------------------------------------------
-- url_decoded: "Deleted[0].Key" (0-based, as in the JSON) -> deleted[1].key.
-- A list value ("CommonPrefixes": [...]) is compared entry by entry with the
-- single field of each entry. Keys ending in "_note" are prose, not values.

local function lookup(result, path)
  local cur = result
  for seg in path:gmatch("[^%.]+") do
    local name, idx = seg:match("^(%w+)%[(%d+)%]$")
    if not name then name = seg end
    if type(cur) ~= "table" then return nil end
    cur = cur[xml.snake(name)]
    if idx then
      if type(cur) ~= "table" then return nil end
      cur = cur[tonumber(idx) + 1]
    end
  end
  return cur
end

local function sole_value(t)
  if type(t) ~= "table" then return t end
  local k1, v1 = next(t)
  if k1 == nil or next(t, k1) ~= nil then return nil end
  return v1
end

-------------------------------------------------------------------------------
-- botocore_expected_parse / sdk_expected, compared with objstore.xml's
-- snake_case output (only keys present in the expectation; values compared
-- exactly, so types matter: botocore's ints and booleans must be ours too).
-- Key mapping is CamelCase -> snake_case via xml.snake, with these explicit
-- exceptions where botocore reshapes the document:
--   Buckets -> buckets.bucket            (botocore flattens <Buckets><Bucket>)
--   Grants  -> access_control_list.grant (botocore renames <AccessControlList>)
--   Error   -> xml.error(s)              (botocore's error wrapper)
-- Not compared: ResponseMetadata (botocore's HTTP metadata) and StatusCode
-- (the HTTP status in sdk_expected): neither is in the XML body.
local RESHAPED = {
  Buckets = function(r) return r.buckets and r.buckets.bucket end,
  Grants = function(r) return r.access_control_list and r.access_control_list.grant end,
}
local NOT_IN_BODY = { ResponseMetadata = true, StatusCode = true }

local function compare_sdk(text, want, null)
  local parsed, root_or_err = xml.parse(text)
  if not parsed then return "xml.parse failed: " .. tostring(root_or_err) end
  local err_fields
  if root_or_err == "Error" then err_fields = xml.error(text) end
  local keys = {}
  for k in pairs(want) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not NOT_IN_BODY[k] then
      local w = want[k]
      local got, path
      if k == "Error" then
        got, path = err_fields, "xml.error"
      elseif RESHAPED[k] then
        got, path = RESHAPED[k](parsed), k
      elseif err_fields then
        got, path = err_fields[xml.snake(k)], "xml.error." .. xml.snake(k)
      else
        got, path = parsed[xml.snake(k)], xml.snake(k)
      end
      local d = diff(got, w, path, false, xml.snake, null)
      if d then return d end
    end
  end
  return nil
end

-------------------------------------------------------------------------------

local function run_index(doc, ctx)
  for i, e in ipairs(doc) do
    local name = "index[" .. i .. "] " .. e.file
    local text, rerr = ctx.read_file(ctx.dir .. "/" .. e.file)
    if not text then
      ctx.fail(name, "cannot read: " .. tostring(rerr))
    else
      local tree, err = xml.parse_tree(text)
      if not tree then
        ctx.fail(name, err)
      elseif ctx.check(name, "root", tree.name, e.root) then
        ctx.pass(name)
      end
    end
  end
end

local function run_case(doc, ctx)
  local text, rerr = ctx.read_file(ctx.dir .. "/" .. doc.file)
  if not text then return ctx.fail("(xml)", "cannot read " .. doc.file .. ": " .. tostring(rerr)) end
  local tree, err = xml.parse_tree(text)
  if not tree then return ctx.fail("(xml)", "parse failed: " .. tostring(err)) end
  local null = ctx.null

  local want_ns = doc.namespace
  if want_ns == null then want_ns = nil end
  if tree.name ~= doc.root then
    ctx.fail("root", "root is " .. show(tree.name) .. ", want " .. show(doc.root))
  elseif tree.ns ~= want_ns then
    ctx.fail("root", "namespace is " .. show(tree.ns) .. ", want " .. show(want_ns))
  else
    ctx.pass("root")
  end

  local rules, serr = shape_rules(doc.parsed_shape)
  if not rules then
    ctx.fail("parsed", serr)
  else
    local d = diff(mechanical(tree, rules), doc.parsed, doc.root, true, identity, null)
    if d then ctx.fail("parsed", d) else ctx.pass("parsed") end
  end

  local decoded, derr = xml.parse(text)
  if not decoded then return ctx.fail("(xml.parse)", derr) end
  xml.decode_url_fields(decoded)

  for i, entry in ipairs(doc.must_extract) do
    local name = "must_extract[" .. i .. "] " .. tostring(entry)
    if type(entry) ~= "string" then
      ctx.fail(name, "entry is not a string")
    else
      local ok, why = interpret(entry, tree, decoded)
      if ok then ctx.pass(name) else ctx.fail(name, why) end
    end
  end

  if type(doc.url_decoded) == "table" then
    local keys = {}
    for k in pairs(doc.url_decoded) do
      if not k:match("_note$") then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local name = "url_decoded " .. k
      local want, got = doc.url_decoded[k], lookup(decoded, k)
      if type(want) == "table" then
        if type(got) ~= "table" or #got ~= #want then
          ctx.fail(name, "got " .. (type(got) == "table" and #got or show(got)) .. " entries, want " .. #want)
        else
          local bad
          for j, w in ipairs(want) do
            if sole_value(got[j]) ~= w then
              bad = string.format("[%d]: got %s, want %s", j, show(sole_value(got[j])), show(w))
              break
            end
          end
          if bad then ctx.fail(name, bad) else ctx.pass(name) end
        end
      elseif got == want then
        ctx.pass(name)
      else
        ctx.fail(name, "got " .. show(got) .. ", want " .. show(want))
      end
    end
  end

  for _, field in ipairs({ "botocore_expected_parse", "sdk_expected" }) do
    local want = doc[field]
    if want ~= nil and want ~= null then
      if type(want) ~= "table" then
        ctx.fail(field, "expectation is not an object")
      else
        local d = compare_sdk(text, want, null)
        if d then ctx.fail(field, d) else ctx.pass(field) end
      end
    end
  end
end

function H.run(doc, ctx)
  if is_case(doc) then
    run_case(doc, ctx)
  else
    run_index(doc, ctx)
  end
end

return H
