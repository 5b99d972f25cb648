--- @include "purge_lapsed_holds"
--- @include "purge_expired_packs"
--- @include "purge_expired_grants"
-- Drops lapsed holds, expired packs and expired credits, so that what a script reads next is
-- current. Scripts that call it open their KEYS with the same seven, in this order: account,
-- holds, hold_amounts, packs, pack_left, grants, grant_left (`spendingKeys` on the TS side).
local function refresh_spending(now)
  purge_lapsed_holds(KEYS[1], KEYS[2], KEYS[3], now)
  purge_expired_packs(KEYS[1], KEYS[4], KEYS[5], now)
  purge_expired_grants(KEYS[1], KEYS[6], KEYS[7], now)
end
