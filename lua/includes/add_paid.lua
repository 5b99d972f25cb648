-- Moves the paid balance by `delta` nano-dollars (an integer string) and keeps `balance`, the
-- sum of paid money and credits, in step. `balance` is stored rather than added up in Lua
-- because Lua numbers are doubles: HINCRBY keeps every stored amount exact in Redis' int64.
local function add_paid(account, delta)
  redis.call('HINCRBY', account, 'paid', delta)
  redis.call('HINCRBY', account, 'balance', delta)
end
