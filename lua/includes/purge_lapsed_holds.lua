--- @include "release_hold"
-- Releases the holds whose lifetime has passed, so that a gateway that crashed mid-request
-- leaks no reservation. `now` is milliseconds since the epoch.
local function purge_lapsed_holds(account, holds, hold_amounts, now)
  local lapsed = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  for _, request_id in ipairs(lapsed) do
    release_hold(account, holds, hold_amounts, request_id)
  end
end
