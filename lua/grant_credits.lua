--[[
  grant_credits: adds complimentary credits to an account, exactly once per grant id. Credits
  are spent before paid money, earliest expiry first, and are never refundable.

  KEYS[1] account        hash  the account's fields
  KEYS[2] grants         zset  credit grant id -> expiry (ms since epoch)
  KEYS[3] grant_left     hash  credit grant id -> nano-dollars left
  KEYS[4] credit_grants  hash  credit grant id -> "amount|expires_at as given" (its identity)

  ARGV[1] grant id
  ARGV[2] amount, nano-dollars (positive integer string)
  ARGV[3] expiry, ms since epoch (a date far in the future when the grant never expires)
  ARGV[4] the grant's identity, compared when the same grant id comes again

  Returns
     1  granted
     2  this grant was made before, with the same content: nothing changed
    -1  no such account
    -3  this grant id was used before with other content
]]
--- @include "add_credits"
--- @include "repeat_of"

local account = KEYS[1]
if redis.call('EXISTS', account) == 0 then
  return -1
end

local replay = repeat_of(KEYS[4], ARGV[1], ARGV[4])
if replay then
  return replay
end

redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
add_credits(account, ARGV[2])
return 1
