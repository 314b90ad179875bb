--- The local side of a sync: a directory walked with LuaFileSystem into
-- entries { rel, path, size, mtime } sorted in the byte order of their
-- relative names, the order a store lists keys in (a walk in directory
-- order would put "a/b" before "a-b", which a listing puts after it).
-- Relative names are composed to NFC (objstore.sync.names.nfc); `path`
-- keeps the name on disk. Symbolic links are skipped unless `follow`;
-- followed directory links that lead back into the walk are detected by
-- device and inode. Sockets, FIFOs and devices are skipped with a notice.
-- A directory that cannot be read (or an entry that cannot be examined)
-- is not a notice: it is an error of the walk, returned beside the list,
-- and the sync treats it as an incomplete listing (nothing deleted, the
-- run fails). objstore's own files are left out at every depth.
local names = require "objstore.sync.names"
local lfs = require "lfs"

local sort, ipairs, pcall, tostring = table.sort, ipairs, pcall, tostring

local _M = {}

--- Names objstore itself writes beside the user's files (temporary
-- downloads, part files, checkpoints, sync state): never synced, at any
-- depth. `name` is one path segment (or a relative name: its last one).
function _M.own_file(name)
  -- Every such name holds ".objstore-": one plain search rules out the rest.
  if not name:find(".objstore-", 1, true) then return false end
  name = name:match("[^/]*$")
  return name:find("^%.objstore%-sync%-") ~= nil or name:find("%.objstore%-tmp%-%x+$") ~= nil
    or name:find("%.objstore%-part$") ~= nil or name:find("%.objstore%-part%-%x+$") ~= nil
    or name:find("%.objstore%-cp$") ~= nil or name:find("%.objstore%-cp%.new%-%x+$") ~= nil
end

--- walk(root, { follow = bool, notice = function(msg), skip = { file =, dir = } })
--   -> entries, missing, errors | nil, err
-- A missing root gives an empty list and `missing = true`. `errors` is a
-- list of { path, message } for the directories (or entries) that could
-- not be read: the list is then incomplete. `skip` (paths as the walk
-- spells them): a file left out with its temporary files
-- (<file>.tmp-<hex>), and a directory not entered: the sync state file
-- and the state directory when they lie in the tree.
function _M.walk(root, opts)
  opts = opts or {}
  local notice = opts.notice or function() end
  local skip = opts.skip or {}
  local entries, errs = {}, {}
  local attr, aerr = lfs.attributes(root)
  if not attr then
    if lfs.symlinkattributes(root) or not tostring(aerr):find("No such file", 1, true) then
      return nil, "cannot read " .. root .. ": " .. tostring(aerr)
    end
    return entries, true, errs
  end
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
      errs[#errs + 1] = { path = dir, rel = rel_dir, message = "cannot read directory " .. dir .. ": "
        .. tostring(iter) }
      on_path[id] = nil
      return
    end
    -- lfs.dir raises on a read error past the first entry: caught, an error.
    local rok, rerr = pcall(function()
      for name in iter, state do
        if name ~= "." and name ~= ".." and not _M.own_file(name) then
          local path = dir .. "/" .. name
          local rel = rel_dir == "" and name or (rel_dir .. "/" .. name)
          local la, lerr, errno = lfs.symlinkattributes(path)
          if not la then
            if errno == 2 then
              notice(path .. ": gone during the walk")
            else
              errs[#errs + 1] = { path = path, rel = rel, message = "cannot examine " .. path .. ": "
                .. tostring(lerr) }
            end
          end
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
              if path ~= skip.dir then visit(path, rel, fa) end
            elseif fa.mode == "file" then
              if path ~= skip.file and not (skip.file and path:sub(1, #skip.file + 5) == skip.file .. ".tmp-") then
                entries[#entries + 1] = { rel = names.nfc(rel), path = path, size = fa.size, mtime = fa.modification,
                  ctime = fa.change, ino = fa.ino, dev = fa.dev }
              end
            else
              notice("special file " .. path .. " (" .. tostring(fa.mode) .. "): skipped")
            end
          end
        end
      end
    end)
    if not rok then
      errs[#errs + 1] = { path = dir, rel = rel_dir, message = "cannot read directory " .. dir .. ": "
        .. tostring(rerr) }
    end
    on_path[id] = nil
  end
  visit(root, "", attr)
  -- Sorted as strings (the C comparison, no Lua call per comparison), then
  -- mapped back. Two names on disk that compose to one (NFC and NFD
  -- spellings side by side): the second met is skipped, reported.
  local rels, by_rel = {}, {}
  for _, e in ipairs(entries) do
    local prev = by_rel[e.rel]
    if prev then
      notice(e.path .. ": same name as " .. prev.path .. " after Unicode composition: skipped")
    else
      by_rel[e.rel] = e
      rels[#rels + 1] = e.rel
    end
  end
  sort(rels)
  local out = {}
  for i, rel in ipairs(rels) do out[i] = by_rel[rel] end
  return out, false, errs
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
