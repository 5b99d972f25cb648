--[[
  settle: bills one served request exactly once. Releases its hold, lets token packs cover its
  tokens (uncached input, then cached input, then output; earliest expiry first), prices the
  rest, spends credits (earliest expiry first) and then paid money, and records the usage.

  KEYS[1] account     hash    the account's fields
  KEYS[2] holds       zset    "<request id>|<held nano-dollars>" -> hold expiry (ms)
  KEYS[3] packs       zset    pack id -> expiry (ms)
  KEYS[4] pack_left   hash    pack id -> tokens left
  KEYS[5] grants      zset    credit grant id -> expiry (ms)
  KEYS[6] grant_left  hash    credit grant id -> nano-dollars left
  KEYS[7] settled     string  marker for this request id; its presence means "already billed"
  KEYS[8] usage       stream  the account's usage records
  KEYS[9] month       hash    totals of the request's UTC month

  ARGV[1]  request id
  ARGV[2]  now, ms since epoch (pack and credit expiry)
  ARGV[3]  created_at, RFC 3339 (the record's time)
  ARGV[4]  model
  ARGV[5]  uncached input tokens
  ARGV[6]  cached input tokens
  ARGV[7]  output tokens
  ARGV[8]  uncached input price, pico-dollars per token
  ARGV[9]  cached input price, pico-dollars per token
  ARGV[10] output price, pico-dollars per token
  ARGV[11] "1" when the counts were estimated by the gateway, else "0"
  ARGV[12] lifetime of the settled marker, seconds
  ARGV[13] the request's hold, nano-dollars, as admit placed it

  Every per-request quantity (token counts, prices, cost) is checked below 2^53 by the caller,
  so the arithmetic on them here is exact; stored amounts change only through HINCRBY.

  Returns {code, cost, pack tokens, from credits, from paid} (amounts in nano-dollars, strings)
     1  settled now
     0  already settled: nothing changed
]]
--- @include "int_string"
--- @include "release_hold"
--- @include "refresh_spending"
--- @include "add_paid"

local account = KEYS[1]
local request_id, now = ARGV[1], tonumber(ARGV[2])

if redis.call('EXISTS', KEYS[7]) == 1 then
  return {0, '0', '0', '0', '0'}
end

release_hold(account, KEYS[2], request_id, ARGV[13])
local totals = redis.call('HMGET', account, 'pack_tokens', 'credits')
local pack_tokens, credits = tonumber(totals[1] or '0'), tonumber(totals[2] or '0')
if refresh_spending(now, pack_tokens, credits) then
  totals = redis.call('HMGET', account, 'pack_tokens', 'credits')
  pack_tokens, credits = tonumber(totals[1] or '0'), tonumber(totals[2] or '0')
end

-- Token packs cover tokens one for one, kind by kind in billing order.
local tokens = {tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])}
local uncovered = {tokens[1], tokens[2], tokens[3]}
local pack_used = 0
local packs = pack_tokens > 0 and redis.call('ZRANGE', KEYS[3], 0, -1) or {}
for _, pack_id in ipairs(packs) do
  local left = tonumber(redis.call('HGET', KEYS[4], pack_id) or '0')
  local used = 0
  for kind = 1, 3 do
    local take = math.min(left - used, uncovered[kind])
    uncovered[kind] = uncovered[kind] - take
    used = used + take
  end
  if used == left then
    redis.call('HDEL', KEYS[4], pack_id)
    redis.call('ZREM', KEYS[3], pack_id)
  elseif used > 0 then
    redis.call('HINCRBY', KEYS[4], pack_id, int_string(-used))
  end
  pack_used = pack_used + used
  if uncovered[3] == 0 and uncovered[2] == 0 and uncovered[1] == 0 then
    break
  end
end
if pack_used > 0 then
  redis.call('HINCRBY', account, 'pack_tokens', -pack_used)
end

-- Each kind's pico-dollars, rounded half up to whole nano-dollars; the cost is their sum.
local kind_cost = {}
local cost = 0
for kind = 1, 3 do
  kind_cost[kind] = math.floor((uncovered[kind] * tonumber(ARGV[7 + kind]) + 500) / 1000)
  cost = cost + kind_cost[kind]
end

-- Credits pay before paid money, earliest expiry first.
local due = cost
local from_credits = 0
local grants = (credits > 0 and due > 0) and redis.call('ZRANGE', KEYS[5], 0, -1) or {}
for _, grant_id in ipairs(grants) do
  if due == 0 then
    break
  end
  local left = redis.call('HGET', KEYS[6], grant_id)
  if left and tonumber(left) > due then
    redis.call('HINCRBY', KEYS[6], grant_id, int_string(-due))
    from_credits = from_credits + due
    due = 0
  elseif left then
    -- left <= due < 2^53 here, so the number is exact.
    redis.call('HDEL', KEYS[6], grant_id)
    redis.call('ZREM', KEYS[5], grant_id)
    from_credits = from_credits + tonumber(left)
    due = due - tonumber(left)
  end
end
if from_credits > 0 then
  redis.call('HINCRBY', account, 'credits', int_string(-from_credits))
  redis.call('HINCRBY', account, 'balance', int_string(-from_credits))
end

-- Paid money takes the rest, even past zero: the request that crosses zero is billed in full.
if due > 0 then
  add_paid(account, int_string(-due))
  redis.call('HINCRBY', account, 'paid_spent', int_string(due))
end

local record = {
  'request_id', request_id, 'created_at', ARGV[3], 'model', ARGV[4],
  'uncached_input_tokens', ARGV[5], 'cached_input_tokens', ARGV[6], 'output_tokens', ARGV[7],
  'pack_tokens', int_string(pack_used), 'cost', int_string(cost), 'estimated', ARGV[11],
}
redis.call('XADD', KEYS[8], '*', unpack(record))

-- The month's totals; a zero adds nothing, so it costs no command.
local totals = {
  requests = 1,
  tokens_uncached_input = tokens[1],
  tokens_cached_input = tokens[2],
  tokens_output = tokens[3],
  tokens_pack = pack_used,
  cost_uncached_input = kind_cost[1],
  cost_cached_input = kind_cost[2],
  cost_output = kind_cost[3],
  cost_total = cost,
}
for field, amount in pairs(totals) do
  if amount > 0 then
    redis.call('HINCRBY', KEYS[9], field, int_string(amount))
  end
end

redis.call('SET', KEYS[7], '1', 'EX', ARGV[12])
return {1, int_string(cost), int_string(pack_used), int_string(from_credits), int_string(due)}
