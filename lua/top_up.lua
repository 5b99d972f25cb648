--[[
  top_up: credits a paid order to the paid balance, exactly once per order id.

  KEYS[1] account      hash  the account's fields
  KEYS[2] orders       hash  order id -> "amount|method|paid_at as given" (the order's identity)
  KEYS[3] order_times  zset  order id -> paid at, ms since epoch (refunds walk it oldest first)

  ARGV[1] order id
  ARGV[2] amount, nano-dollars (positive integer string)
  ARGV[3] payment method: alipay or wechat_pay
  ARGV[4] paid_at as the operator gave it, or "" when it defaulted to now
  ARGV[5] paid at, ms since epoch

  Returns
     1  credited
     2  this order was credited before, with the same content: nothing changed
    -1  no such account
    -2  a refund request is under review: top-ups are refused
    -3  this order id was credited before with other content
]]
--- @include "add_paid"
--- @include "repeat_of"

local account = KEYS[1]
if redis.call('EXISTS', account) == 0 then
  return -1
end

local identity = ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4]
local replay = repeat_of(KEYS[2], ARGV[1], identity)
if replay then
  return replay
end

if redis.call('HEXISTS', account, 'refund') == 1 then
  return -2
end

redis.call('HSET', KEYS[2], ARGV[1], identity)
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
add_paid(account, ARGV[2])
return 1
