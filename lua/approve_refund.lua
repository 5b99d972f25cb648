--[[
  approve_refund: pays out a pending refund. The gateway computes the amount and its breakdown
  by order from a snapshot of the account; this script applies them only if that snapshot still
  holds: no request in flight, and no paid money spent since. Otherwise the gateway reads again
  and retries, so the amount always reflects every settled request.

  KEYS[1] account         hash  the account's fields
  KEYS[2] refunds         hash  refund id -> the refund's record (JSON)
  KEYS[3] order_refunded  hash  order id -> nano-dollars refunded from it
  KEYS[4] holds           zset  "<request id>|<held nano-dollars>" -> hold expiry (ms)

  ARGV[1] refund id
  ARGV[2] now, ms since epoch
  ARGV[3] `paid_spent` as the snapshot read it (integer string)
  ARGV[4] amount, nano-dollars (integer string, the sum of the breakdown)
  ARGV[5] the approved refund's record (JSON)
  ARGV[6..] order id, nano-dollars: the breakdown, in pairs

  Returns
     1  approved: the amount left the paid balance
    -2  this refund is not the account's pending one
    -3  requests are still in flight
    -4  paid money was spent since the snapshot
]]
--- @include "purge_lapsed_holds"
--- @include "add_paid"
--- @include "negate"

local account = KEYS[1]
if redis.call('HGET', account, 'refund') ~= ARGV[1] then
  return -2
end

purge_lapsed_holds(account, KEYS[4], tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[4]) > 0 then
  return -3
end
if (redis.call('HGET', account, 'paid_spent') or '0') ~= ARGV[3] then
  return -4
end

for i = 6, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1])
end
if ARGV[4] ~= '0' then
  add_paid(account, negate(ARGV[4]))
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
redis.call('HDEL', account, 'refund')
return 1
