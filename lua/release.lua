--[[
  release: lets go of the hold of a request that ends without a bill (the upstream refused it,
  failed, or could not be reached).

  KEYS[1] account  hash  the account's fields
  KEYS[2] holds    zset  "<request id>|<held nano-dollars>" -> hold expiry (ms)

  ARGV[1] request id
  ARGV[2] the request's hold, nano-dollars, as admit placed it

  Returns
     1  the hold was released
     0  there was no hold (it lapsed, or was released before)
]]
--- @include "release_hold"

if release_hold(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then
  return 1
end
return 0
