-- Small shell and file helpers of the S3 front's specs
-- (spec/front_server_spec.lua, spec/front_server_attack_spec.lua).
local _M = {}

--- Runs a shell command: ok, output (stdout and stderr), exit code.
function _M.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  if type(ok) == "number" then code = ok; ok = code == 0 end -- Lua 5.1
  return ok == true, out, code
end

--- Single-quotes any value for the shell.
function _M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- n random bytes from /dev/urandom, in hex.
function _M.random_hex(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(n)
  f:close()
  return (b:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- The code of an S3 XML error document.
function _M.code_of(body) return body and body:match("<Code>([^<]*)</Code>") end

return _M
