--[[
  account_state: reads everything the account view and refund estimates need, after dropping
  lapsed holds, expired packs and expired credits so that what it returns is current.

  KEYS[1] account         hash  the account's fields
  KEYS[2] holds           zset  "<request id>|<held nano-dollars>" -> hold expiry (ms)
  KEYS[3] packs           zset  pack id -> expiry (ms)
  KEYS[4] pack_left       hash  pack id -> tokens left
  KEYS[5] grants          zset  credit grant id -> expiry (ms)
  KEYS[6] grant_left      hash  credit grant id -> nano-dollars left
  KEYS[7] orders          hash  order id -> "amount|method|paid_at as given"
  KEYS[8] order_times     zset  order id -> paid at (ms)
  KEYS[9] order_refunded  hash  order id -> nano-dollars refunded from it

  ARGV[1] now, ms since epoch

  Returns a JSON document, or "" when there is no such account:
    account    the account's fields
    packs      one {id, tokens left, expiry ms} triple a pack, earliest expiry first
    orders     one {id, identity, paid at ms, refunded} quadruple an order, oldest first
    in_flight  how many requests hold part of the balance
]]
--- @include "purge_lapsed_holds"
--- @include "refresh_spending"

local account = KEYS[1]
if redis.call('EXISTS', account) == 0 then
  return ''
end

local now = tonumber(ARGV[1])
local totals = redis.call('HMGET', account, 'pack_tokens', 'credits')
purge_lapsed_holds(account, KEYS[2], now)
refresh_spending(now, tonumber(totals[1] or '0'), tonumber(totals[2] or '0'))

local fields = {}
local flat = redis.call('HGETALL', account)
for i = 1, #flat, 2 do
  fields[flat[i]] = flat[i + 1]
end

local packs = {}
local pack_ids = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
for i = 1, #pack_ids, 2 do
  local left = redis.call('HGET', KEYS[4], pack_ids[i]) or '0'
  table.insert(packs, {pack_ids[i], left, pack_ids[i + 1]})
end

local orders = {}
local order_ids = redis.call('ZRANGE', KEYS[8], 0, -1, 'WITHSCORES')
for i = 1, #order_ids, 2 do
  local id = order_ids[i]
  local identity = redis.call('HGET', KEYS[7], id) or ''
  local refunded = redis.call('HGET', KEYS[9], id) or '0'
  table.insert(orders, {id, identity, order_ids[i + 1], refunded})
end

return cjson.encode({
  account = fields,
  packs = packs,
  orders = orders,
  in_flight = redis.call('ZCARD', KEYS[2]),
})
