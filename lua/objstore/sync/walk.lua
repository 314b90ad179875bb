--- The local side of a sync: a directory walked with LuaFileSystem into
-- entries { rel, path, size, mtime } sorted in the byte order of their
-- relative names, the order a store lists keys in (a walk in directory
-- order would put "a/b" before "a-b", which a listing puts after it).
-- Relative names are composed to NFC (objstore.sync.names.nfc); `path`
-- keeps the name on disk. Symbolic links are skipped unless `follow`;
-- followed directory links that lead back into the walk are detected by
-- device and inode. Sockets, FIFOs and devices are skipped with a notice.
local names = require "objstore.sync.names"
local lfs = require "lfs"

local sort, ipairs = table.sort, ipairs

local _M = {}

--- Names the sync itself keeps in a local root: never synced.
function _M.own_file(rel)
  return rel:find("^%.objstore%-sync%-") ~= nil or rel:find("%.objstore%-tmp%-%d+$") ~= nil
    or rel:find("%.objstore%-part$") ~= nil or rel:find("%.objstore%-cp$") ~= nil
end

--- walk(root, { follow = bool, notice = function(msg) }) -> entries | nil, err
-- A missing root gives an empty list and `missing = true`.
function _M.walk(root, opts)
  opts = opts or {}
  local notice = opts.notice or function() end
  local entries = {}
  local attr = lfs.attributes(root)
  if not attr then return entries, true end
  if attr.mode ~= "directory" then return nil, root .. " is not a directory" end
  local on_path = {}
  local function visit(dir, rel_dir, a)
    local id = a.dev .. ":" .. a.ino
    if on_path[id] then
      notice("symlink loop at " .. dir .. ": not followed")
      return
    end
    on_path[id] = true
    local ok, iter, state = pcall(lfs.dir, dir)
    if not ok then
      notice("cannot read directory " .. dir .. ": " .. tostring(iter))
      on_path[id] = nil
      return
    end
    for name in iter, state do
      if name ~= "." and name ~= ".." then
        local path = dir .. "/" .. name
        local rel = rel_dir == "" and name or (rel_dir .. "/" .. name)
        local la = lfs.symlinkattributes(path)
        local fa = la
        if la and la.mode == "link" then
          if opts.follow then
            fa = lfs.attributes(path)
            if not fa then notice("dangling symlink " .. path .. ": skipped") end
          else
            notice("symlink " .. path .. ": skipped (not followed)")
            fa = nil
          end
        end
        if fa then
          if fa.mode == "directory" then
            visit(path, rel, fa)
          elseif fa.mode == "file" then
            if not (rel_dir == "" and _M.own_file(name)) and not name:find("%.objstore%-tmp%-%d+$") then
              entries[#entries + 1] = { rel = names.nfc(rel), path = path, size = fa.size, mtime = fa.modification }
            end
          else
            notice("special file " .. path .. " (" .. tostring(fa.mode) .. "): skipped")
          end
        end
      end
    end
    on_path[id] = nil
  end
  visit(root, "", attr)
  sort(entries, function(x, y) return x.rel < y.rel end)
  -- Two names on disk that compose to one (NFC and NFD spellings side by
  -- side): the second is skipped, reported.
  local out = {}
  for _, e in ipairs(entries) do
    local prev = out[#out]
    if prev and prev.rel == e.rel then
      notice(e.path .. ": same name as " .. prev.path .. " after Unicode composition: skipped")
    else
      out[#out + 1] = e
    end
  end
  return out, false
end

--- An iterator over entries (a list) in order.
function _M.iter(list)
  local i = 0
  return function()
    i = i + 1
    return list[i]
  end
end

return _M
