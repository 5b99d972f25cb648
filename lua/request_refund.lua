--[[
  request_refund: opens a refund request. While it is pending, API calls and top-ups are
  refused; it cannot be cancelled, only approved or rejected by an operator.

  KEYS[1] account  hash  the account's fields (`refund` holds the pending request's id)
  KEYS[2] refunds  hash  refund id -> the refund's record (JSON)

  ARGV[1] refund id
  ARGV[2] the refund's record (JSON, status pending)

  Returns {code, pending refund id}
     1  opened
    -1  no such account
    -2  a refund request is pending already (its id is returned)
]]
local account = KEYS[1]
if redis.call('EXISTS', account) == 0 then
  return {-1, ''}
end

local pending = redis.call('HGET', account, 'refund')
if pending then
  return {-2, pending}
end

redis.call('HSET', account, 'refund', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {1, ARGV[1]}
