--[[
  reject_refund: closes a pending refund without paying anything. API calls and top-ups resume.

  KEYS[1] account  hash  the account's fields
  KEYS[2] refunds  hash  refund id -> the refund's record (JSON)

  ARGV[1] refund id
  ARGV[2] the rejected refund's record (JSON)

  Returns
     1  rejected
    -2  this refund is not the account's pending one
]]
if redis.call('HGET', KEYS[1], 'refund') ~= ARGV[1] then
  return -2
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[1], 'refund')
return 1
