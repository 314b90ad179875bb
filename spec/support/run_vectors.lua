-- Runs every case of every JSON vector file under a directory.
--   lua spec/support/run_vectors.lua <dir> [-v]
-- Each file is claimed by one handler in spec/support/vectors/ (by its shape,
-- not its name, so new files of a known shape run without changes here).
-- A file no handler claims, or a case a handler cannot run, is a failure.
-- Prints one line per failure and a final "N passed, N failed".
local cjson = require "cjson.safe"
local lfs = require "lfs"

local HANDLERS = { "sigv4", "chunked", "post_policy", "oss", "presign_generated", "checksums", "xml", "rpc" }
local only = os.getenv("VECTOR_HANDLERS")
if only then
  HANDLERS = {}
  for h in only:gmatch("[^,]+") do HANDLERS[#HANDLERS + 1] = h end
end

local root = arg[1] or "spec/fixtures/vectors"
local verbose = arg[2] == "-v"

local handlers = {}
for _, name in ipairs(HANDLERS) do
  handlers[#handlers + 1] = require("vectors." .. name)
end

local passed, failed = 0, 0

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("*a")
  f:close()
  return data
end

local function new_context(file)
  local ctx = { file = file, dir = file:match("^(.*)/[^/]*$") or "." }
  function ctx.pass(name)
    passed = passed + 1
    if verbose then print("ok   " .. file .. " :: " .. name) end
  end
  function ctx.fail(name, msg)
    failed = failed + 1
    print("FAIL " .. file .. " :: " .. name .. ": " .. tostring(msg))
  end
  -- Compares one field; a missing expectation is not a comparison.
  -- Returns true when equal or not expected.
  function ctx.check(name, what, got, want)
    if want == nil or want == cjson.null then return true end
    if got == want then return true end
    ctx.fail(name, string.format("%s differs\n  got:  %q\n  want: %q", what, tostring(got), tostring(want)))
    return false
  end
  ctx.read_file = read_file
  ctx.null = cjson.null
  return ctx
end

local function walk(dir, out)
  local names = {}
  for name in lfs.dir(dir) do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local path = dir .. "/" .. name
    local mode = lfs.attributes(path, "mode")
    if mode == "directory" then
      walk(path, out)
    elseif mode == "file" and name:match("%.json$") then
      out[#out + 1] = path
    end
  end
  return out
end

if lfs.attributes(root, "mode") ~= "directory" then
  io.stderr:write("run_vectors: not a directory: " .. root .. "\n")
  os.exit(2)
end

for _, file in ipairs(walk(root, {})) do
  local ctx = new_context(file)
  local text, rerr = read_file(file)
  local doc, jerr = nil, rerr
  if text then doc, jerr = cjson.decode(text) end
  if doc == nil then
    ctx.fail("(file)", "cannot read JSON: " .. tostring(jerr))
  else
    local handler
    for _, h in ipairs(handlers) do
      if h.claims(file, doc) then
        handler = h
        break
      end
    end
    if not handler then
      ctx.fail("(file)", "no handler understands this file's shape")
    else
      local ok, err = xpcall(function() handler.run(doc, ctx) end, debug.traceback)
      if not ok then ctx.fail("(handler " .. handler.name .. ")", err) end
    end
  end
end

print(string.format("vectors: %d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
