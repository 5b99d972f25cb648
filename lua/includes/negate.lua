-- Negates an integer string without passing it through a Lua number, so amounts beyond 2^53
-- stay exact. Redis refuses "-0" as an integer, hence the special case.
local function negate(amount)
  if amount == '0' then
    return '0'
  end
  if string.sub(amount, 1, 1) == '-' then
    return string.sub(amount, 2)
  end
  return '-' .. amount
end
