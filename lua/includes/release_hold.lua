--- @include "negate"
-- Releases the hold of one request, if it still stands. Returns true when there was one.
local function release_hold(account, holds, hold_amounts, request_id)
  local amount = redis.call('HGET', hold_amounts, request_id)
  if not amount then
    return false
  end
  redis.call('HINCRBY', account, 'held', negate(amount))
  redis.call('HDEL', hold_amounts, request_id)
  redis.call('ZREM', holds, request_id)
  return true
end
