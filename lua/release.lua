--[[
  release: lets go of the hold of a request that ends without a bill (the upstream refused it,
  failed, or could not be reached).

  KEYS[1] account       hash  the account's fields
  KEYS[2] holds         zset  request id -> hold expiry (ms)
  KEYS[3] hold_amounts  hash  request id -> held nano-dollars

  ARGV[1] request id

  Returns
     1  the hold was released
     0  there was no hold (it lapsed, or was released before)
]]
--- @include "release_hold"

if release_hold(KEYS[1], KEYS[2], KEYS[3], ARGV[1]) == false then
  return 0
end
return 1
