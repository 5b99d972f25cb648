-- Idempotency by id. Returns nil when `id` is new in `ids` (a hash of id -> identity), 2 when
-- it came before with the same identity (a replay: change nothing), -3 when it came with another.
local function repeat_of(ids, id, identity)
  local known = redis.call('HGET', ids, id)
  if not known then
    return nil
  end
  return known == identity and 2 or -3
end
