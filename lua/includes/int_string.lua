-- Formats a whole Lua number without an exponent: tostring(1e15) gives "1e+15", which HINCRBY
-- and the gateway would refuse. Only used on per-request amounts, which stay below 2^53.
local function int_string(n)
  return string.format('%.0f', n)
end
