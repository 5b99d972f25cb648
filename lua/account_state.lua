--[[
  account_state: reads everything the account view and refund estimates need, after dropping
  lapsed holds, expired packs and expired credits so that what it returns is current.

  KEYS[1]  account         hash  the account's fields
  KEYS[2]  holds           zset  request id -> hold expiry (ms)
  KEYS[3]  hold_amounts    hash  request id -> held nano-dollars
  KEYS[4]  packs           zset  pack id -> expiry (ms)
  KEYS[5]  pack_left       hash  pack id -> tokens left
  KEYS[6]  grants          zset  credit grant id -> expiry (ms)
  KEYS[7]  grant_left      hash  credit grant id -> nano-dollars left
  KEYS[8]  orders          hash  order id -> "amount|method|paid_at as given"
  KEYS[9]  order_times     zset  order id -> paid at (ms)
  KEYS[10] order_refunded  hash  order id -> nano-dollars refunded from it

  ARGV[1] now, ms since epoch

  Returns a JSON document, or "" when there is no such account:
    account    the account's fields
    packs      one {id, tokens left, expiry ms} triple a pack, earliest expiry first
    orders     one {id, identity, paid at ms, refunded} quadruple an order, oldest first
    in_flight  how many requests hold part of the balance
]]
--- @include "refresh_spending"

local account = KEYS[1]
if redis.call('EXISTS', account) == 0 then
  return ''
end

refresh_spending(tonumber(ARGV[1]))

local fields = {}
local flat = redis.call('HGETALL', account)
for i = 1, #flat, 2 do
  fields[flat[i]] = flat[i + 1]
end

local packs = {}
local pack_ids = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
for i = 1, #pack_ids, 2 do
  local left = redis.call('HGET', KEYS[5], pack_ids[i]) or '0'
  table.insert(packs, {pack_ids[i], left, pack_ids[i + 1]})
end

local orders = {}
local order_ids = redis.call('ZRANGE', KEYS[9], 0, -1, 'WITHSCORES')
for i = 1, #order_ids, 2 do
  local id = order_ids[i]
  local identity = redis.call('HGET', KEYS[8], id) or ''
  local refunded = redis.call('HGET', KEYS[10], id) or '0'
  table.insert(orders, {id, identity, order_ids[i + 1], refunded})
end

return cjson.encode({
  account = fields,
  packs = packs,
  orders = orders,
  in_flight = redis.call('ZCARD', KEYS[2]),
})
