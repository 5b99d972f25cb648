--- @include "negate"
-- Releases the hold of one request, if it still stands. A hold is the member
-- "<request id>|<nano-dollars>" of the holds set, so releasing it needs no second lookup.
-- Returns true when there was one.
local function release_hold(account, holds, request_id, amount)
  if redis.call('ZREM', holds, request_id .. '|' .. amount) == 0 then
    return false
  end
  if amount ~= '0' then
    redis.call('HINCRBY', account, 'held', negate(amount))
  end
  return true
end
