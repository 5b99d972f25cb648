--- @include "negate"
-- Releases the holds whose lifetime has passed, so that a gateway that crashed mid-request
-- leaks no reservation. `now` is milliseconds since the epoch. Returns true when any lapsed.
local function purge_lapsed_holds(account, holds, now)
  local lapsed = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  for _, member in ipairs(lapsed) do
    local amount = string.match(member, '|(%d+)$')
    if amount and amount ~= '0' then
      redis.call('HINCRBY', account, 'held', negate(amount))
    end
  end
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  end
  return #lapsed > 0
end
