--[[
  admit: authenticates an API key in its account's own slot and admits one request, placing a
  hold on the balance that the request's settlement will release.

  KEYS[1] account     hash  the account's fields (paid, credits, balance, held, pack_tokens,
                            suspended, refund)
  KEYS[2] holds       zset  "<request id>|<held nano-dollars>" -> hold expiry (ms since epoch)
  KEYS[3] packs       zset  pack id -> expiry (ms since epoch)
  KEYS[4] pack_left   hash  pack id -> tokens left
  KEYS[5] grants      zset  credit grant id -> expiry (ms since epoch)
  KEYS[6] grant_left  hash  credit grant id -> nano-dollars left
  KEYS[7] keys        hash  sha256(api key) -> key id

  ARGV[1] sha256 of the API key, lower-case hex
  ARGV[2] request id
  ARGV[3] now, ms since epoch
  ARGV[4] hold amount, nano-dollars (integer string; the request's worst cost, or "0" when
          holds are off: the hold then only marks the request as in flight)
  ARGV[5] hold lifetime, ms (the request timeout: a hold lapses on its own after it)
  ARGV[6] "1" when holds guard the balance, "0" for the plain rule (balance above 0 admits)

  Returns {code, key id}
     1  admitted, hold placed
    -1  unknown or revoked key
    -2  account suspended by an operator
    -3  a refund request is under review
    -4  nothing to spend: balance 0 or below and no valid pack tokens
    -5  balance above 0 but held in full by requests in flight
]]
--- @include "purge_lapsed_holds"
--- @include "refresh_spending"

local account = KEYS[1]
local request_id, now = ARGV[2], tonumber(ARGV[3])

local key_id = redis.call('HGET', KEYS[7], ARGV[1])
if not key_id then
  return {-1, ''}
end

local fields = {'suspended', 'refund', 'balance', 'held', 'pack_tokens', 'credits'}
local state = redis.call('HMGET', account, unpack(fields))
if state[1] then
  return {-2, key_id}
end
if state[2] then
  return {-3, key_id}
end

local lapsed = purge_lapsed_holds(account, KEYS[2], now)
local expired = refresh_spending(now, tonumber(state[5] or '0'), tonumber(state[6] or '0'))
if lapsed or expired then
  state = redis.call('HMGET', account, unpack(fields))
end

local balance = tonumber(state[3] or '0')
local held = tonumber(state[4] or '0')
local on_packs = tonumber(state[5] or '0') > 0

-- Comparisons only, no sums: a double keeps the order of integers exactly as long as one side
-- (here `held`, a sum of per-request holds) is below 2^53, whatever the size of `balance`.
if not on_packs then
  if balance <= 0 then
    return {-4, key_id}
  end
  if ARGV[6] == '1' and balance <= held then
    return {-5, key_id}
  end
end

local amount = ARGV[4]
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), request_id .. '|' .. amount)
if amount ~= '0' then
  redis.call('HINCRBY', account, 'held', amount)
end
return {1, key_id}
