--- @include "negate"
--- @include "add_credits"
-- Drops credit grants whose validity has ended and takes what was left of them out of the
-- credit total. Grants without an expiry are scored far in the future and never match.
-- Returns true when any expired.
local function purge_expired_grants(account, grants, grant_left, now)
  local expired = redis.call('ZRANGEBYSCORE', grants, '-inf', now)
  for _, grant_id in ipairs(expired) do
    local left = redis.call('HGET', grant_left, grant_id)
    if left then
      add_credits(account, negate(left))
      redis.call('HDEL', grant_left, grant_id)
    end
    redis.call('ZREM', grants, grant_id)
  end
  return #expired > 0
end
