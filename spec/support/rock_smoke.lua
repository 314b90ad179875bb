-- Smoke test of an installed objstore rock (.ci/run): one real round trip
-- against the S3 server in OBJSTORE_TEST_ENDPOINT (eval "$(bash
-- spec/support/rgw.sh env)") with the modules the rock installed.
--   lua5.4 spec/support/rock_smoke.lua <tree>
-- Run it with LUA_PATH/LUA_CPATH naming only the rock tree and the
-- dependencies (no ";;"): <tree> is checked to be where objstore, its C core
-- and every submodule it loads come from, so the copy in ./lua cannot stand
-- in for the rock. Creates a bucket hb-rock-<time>-<random>, puts, heads,
-- gets, compares, deletes both. Prints "rock smoke: ok" or fails with a
-- message (exit status 1).
local tree = arg[1]
local function die(msg)
  io.stderr:write("rock smoke: ", tostring(msg), "\n")
  os.exit(1)
end
if not tree or tree == "" then die("usage: rock_smoke.lua <luarocks tree>") end
tree = tree:gsub("/+$", "")

local objstore = require "objstore"
require "objstore.engine.signer"
require "objstore.checksum"
require "objstore.xml"

local function from_tree(name, path)
  local file = package.searchpath and package.searchpath(name, path)
  if not file then die(name .. " is not on the search path") end
  if file:sub(1, #tree + 1) ~= tree .. "/" then die(name .. " loads from " .. file .. ", outside " .. tree) end
end

local function env(n)
  local v = os.getenv(n)
  if not v or v == "" then die(n .. " is not set (eval \"$(bash spec/support/rgw.sh env)\")") end
  return v
end

math.randomseed(os.time())
local bucket = string.format("hb-rock-%d-%d", os.time() % 1000000, math.random(1000, 9999))
local key = "smoke/hello rock.txt"
local body = "objstore rock smoke " .. bucket .. "\n" .. string.rep("0123456789", 100)

local c = objstore.new{ endpoint = env("OBJSTORE_TEST_ENDPOINT"), access_key = env("OBJSTORE_TEST_ACCESS_KEY"),
  secret_key = env("OBJSTORE_TEST_SECRET_KEY"), region = os.getenv("OBJSTORE_TEST_REGION") or "us-east-1" }

-- A failed call raises, so that the bucket is still removed afterwards.
local function step(what, ok, err)
  if not ok then error(what .. ": " .. tostring(err), 0) end
  return ok
end

local created = false
local ok, err = pcall(function()
  step("create_bucket " .. bucket, c:create_bucket(bucket))
  created = true
  step("put_object", c:put_object(bucket, key, body, { content_type = "text/plain" }))
  local head = step("head_object", c:head_object(bucket, key))
  if tonumber(head.content_length) ~= #body then
    error("head_object: content_length " .. tostring(head.content_length) .. ", want " .. #body, 0)
  end
  local got = step("get_object", c:get_object(bucket, key))
  if got.body ~= body then
    error("get_object: " .. #tostring(got.body) .. " bytes that differ from the " .. #body .. " sent", 0)
  end
  step("delete_object", c:delete_object(bucket, key))
end)
if created then
  local dok, derr = c:delete_bucket(bucket)
  if ok and not dok then ok, err = false, "delete_bucket: " .. tostring(derr) end
end
if not ok then die(err) end

-- Everything objstore loaded came from the rock's tree.
for name in pairs(package.loaded) do
  if name == "objstore" or name:match("^objstore%.") then
    from_tree(name, name == "objstore.core" and package.cpath or package.path)
  end
end
print("rock smoke: ok (" .. bucket .. ", " .. #body .. " bytes, objstore " .. tostring(objstore._VERSION) .. ")")
