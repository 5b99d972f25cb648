--- @include "negate"
-- Drops token packs whose validity has ended and takes their tokens out of `pack_tokens`.
-- Returns true when any expired.
local function purge_expired_packs(account, packs, pack_left, now)
  local expired = redis.call('ZRANGEBYSCORE', packs, '-inf', now)
  for _, pack_id in ipairs(expired) do
    local left = redis.call('HGET', pack_left, pack_id)
    if left then
      redis.call('HINCRBY', account, 'pack_tokens', negate(left))
      redis.call('HDEL', pack_left, pack_id)
    end
    redis.call('ZREM', packs, pack_id)
  end
  return #expired > 0
end
