-- Moves the credit total by `delta` nano-dollars (an integer string) and keeps `balance`, the
-- sum of paid money and credits, in step (see add_paid for why it is stored).
local function add_credits(account, delta)
  redis.call('HINCRBY', account, 'credits', delta)
  redis.call('HINCRBY', account, 'balance', delta)
end
