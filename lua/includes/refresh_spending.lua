--- @include "purge_expired_packs"
--- @include "purge_expired_grants"
-- Drops expired packs and credits, so that what a script spends or reads next is current.
-- `pack_tokens` and `credits` are the account's totals as read: when one is 0 there is nothing
-- of that kind to expire, and its set is not even looked at (the common case costs nothing).
-- Scripts that call it open their KEYS with the same six, in this order: account, holds, packs,
-- pack_left, grants, grant_left (`spendingKeys` on the TypeScript side). Returns true when
-- anything expired.
local function refresh_spending(now, pack_tokens, credits)
  local changed = false
  if pack_tokens > 0 and purge_expired_packs(KEYS[1], KEYS[3], KEYS[4], now) then
    changed = true
  end
  if credits > 0 and purge_expired_grants(KEYS[1], KEYS[5], KEYS[6], now) then
    changed = true
  end
  return changed
end
