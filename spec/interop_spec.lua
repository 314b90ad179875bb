-- Interoperability with the reference clients on a real server: what
-- objstore writes, awscli and boto3 read back byte for byte, and the
-- reverse, including keys that need careful encoding.
local servers = require "servers"
local cjson = require "cjson"
local lfs = require "lfs"

local KEYS = { "plain.txt", "with space.txt", "unicode-\195\169\228\184\173.bin", "plus+sign", "percent%41",
  "q?mark", "hash#tag", "eq=and&amp", "double//slash", "trailing/", "dir/sub dir/file name.txt",
  "tilde~star*(paren)!'", "semi;colon,comma$dollar@at" }

local function bytes(i)
  local t = {}
  for j = 1, 2000 + i * 37 do t[j] = string.char((i * 31 + j * 7) % 256) end
  return table.concat(t)
end

for _, srv in ipairs(servers.list()) do
  describe("interop on " .. srv.name .. " #server", function()
    local c, bucket, dir, env

    setup(function()
      c = servers.client(srv)
      bucket = servers.bucket_name("io")
      assert(c:create_bucket(bucket))
      dir = servers.tmpdir()
      env = "AWS_ACCESS_KEY_ID=" .. servers.q(srv.access_key) .. " AWS_SECRET_ACCESS_KEY=" .. servers.q(srv.secret_key)
        .. " AWS_REGION=" .. servers.q(srv.region) .. " AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null"
        .. " AWS_SHARED_CREDENTIALS_FILE=/dev/null "
    end)

    teardown(function()
      servers.cleanup(c, bucket)
      servers.sh("rm -rf " .. servers.q(dir))
    end)

    local function boto3(mode, keys, sub)
      local kf = dir .. "/keys.json"
      servers.write_file(kf, cjson.encode(keys))
      local ok, out = servers.sh(env .. "/usr/bin/python3 spec/support/boto3_interop.py " .. mode .. " "
        .. servers.q(srv.endpoint) .. " " .. servers.q(bucket) .. " " .. servers.q(sub) .. " < " .. servers.q(kf))
      assert.is_true(ok, out)
    end

    it("boto3 reads what objstore wrote, awkward keys included", function()
      local keys = {}
      for i, k in ipairs(KEYS) do
        keys[i] = "w/" .. k
        assert(c:put_object(bucket, keys[i], bytes(i)))
      end
      local sub = dir .. "/from-objstore"
      assert(lfs.mkdir(sub))
      boto3("get", keys, sub)
      for i = 1, #KEYS do
        assert.equals(bytes(i), servers.read_file(sub .. "/" .. (i - 1)), keys[i])
      end
    end)

    it("objstore reads what boto3 wrote, awkward keys included", function()
      local keys = {}
      local sub = dir .. "/to-boto3"
      assert(lfs.mkdir(sub))
      for i, k in ipairs(KEYS) do
        keys[i] = "b/" .. k
        servers.write_file(sub .. "/" .. (i - 1), bytes(i + 100))
      end
      boto3("put", keys, sub)
      local listed = {}
      for o in c:list_objects_iter(bucket, { prefix = "b/" }) do listed[o.key] = o.size end
      for i, k in ipairs(keys) do
        assert.equals(bytes(i + 100), assert(c:get_object(bucket, k)).body, k)
        assert.equals(#bytes(i + 100), listed[k], k)
      end
    end)

    it("aws s3 cp round-trips a 12 MiB object with objstore", function()
      local src = dir .. "/big.bin"
      local parts = {}
      for i = 1, 12 * 1024 do parts[i] = string.rep(string.char(i % 251), 1024) end
      local data = table.concat(parts)
      servers.write_file(src, data)
      assert(c:put_object(bucket, "cli/big one.bin", { path = src }))
      local ok, out = servers.sh(env .. "/usr/bin/aws --endpoint-url " .. servers.q(srv.endpoint)
        .. " s3 cp " .. servers.q("s3://" .. bucket .. "/cli/big one.bin") .. " " .. servers.q(dir .. "/back.bin"))
      assert.is_true(ok, out)
      assert.equals(data, servers.read_file(dir .. "/back.bin"))
      -- and the other way: aws uploads (multipart at this size), objstore reads
      ok, out = servers.sh(env .. "/usr/bin/aws --endpoint-url " .. servers.q(srv.endpoint)
        .. " s3 cp " .. servers.q(src) .. " " .. servers.q("s3://" .. bucket .. "/cli/from-aws.bin"))
      assert.is_true(ok, out)
      local got = assert(c:get_object(bucket, "cli/from-aws.bin", { file = dir .. "/from-aws.bin" }))
      assert.equals(#data, got.content_length)
      assert.equals(data, servers.read_file(dir .. "/from-aws.bin"))
    end)
  end)
end
