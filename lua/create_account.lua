--[[
  create_account: creates an empty account.

  KEYS[1] account  hash  the account's fields

  ARGV[1] now, ms since epoch

  Returns
     1  created
     0  an account with this id exists already
]]
if redis.call('HSETNX', KEYS[1], 'created_at', ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'paid', '0', 'credits', '0', 'balance', '0', 'held', '0',
  'pack_tokens', '0', 'paid_spent', '0')
return 1
