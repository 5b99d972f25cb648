--[[
  set_suspension: turns an operator's suspension of an account on (with a reason) or off.

  KEYS[1] account  hash  the account's fields

  ARGV[1] the reason, or "" to lift the suspension

  Returns
     1  done
    -1  no such account
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'suspended')
else
  redis.call('HSET', KEYS[1], 'suspended', ARGV[1])
end
return 1
