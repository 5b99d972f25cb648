--[[
  grant_pack: adds a token pack to an account, exactly once per pack id. A pack covers tokens
  one for one, before any money, until it expires 30 days after purchase.

  KEYS[1] account      hash  the account's fields
  KEYS[2] packs        zset  pack id -> expiry (ms since epoch)
  KEYS[3] pack_left    hash  pack id -> tokens left
  KEYS[4] pack_grants  hash  pack id -> "tokens|purchased_at as given" (its identity)

  ARGV[1] pack id
  ARGV[2] tokens (positive integer)
  ARGV[3] expiry, ms since epoch
  ARGV[4] the pack's identity, compared when the same pack id comes again

  Returns
     1  granted
     2  this pack was granted before, with the same content: nothing changed
    -1  no such account
    -3  this pack id was used before with other content
]]
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
redis.call('HINCRBY', account, 'pack_tokens', ARGV[2])
return 1
