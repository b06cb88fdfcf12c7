-- Removes finished jobs from one index ('done' for completed and cancelled
-- jobs, 'dead' for dead ones): first those that finished before ARGV[3]
-- (Unix ms; '' for all), then, while more than ARGV[4] remain (-1: no
-- count limit), the oldest. Only jobs whose state is ARGV[6] ('' for any)
-- go, and at most ARGV[5] in this call. ARGV[7] is 'prune' when retention
-- does it, which counts the removals. Returns the number removed.
--
-- ARGV: key prefix, index, before, keep, limit, state, why.
local p = ARGV[1]
local index = p .. ARGV[2]
local max = ARGV[3] == '' and '+inf' or ('(' .. ARGV[3])
local keep = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local want = ARGV[6]
local removed = 0
local function remove(id)
  local key = p .. 'job:' .. id
  local state = redis.call('HGET', key, 'state')
  if want ~= '' and state ~= want then return false end
  if state == 'cancelled' then redis.call('HINCRBY', p .. 'counts', state, -1) end
  redis.call('DEL', key)
  redis.call('ZREM', index, id)
  removed = removed + 1
  return true
end
-- Skipped jobs (another state) stay in the index, so the offset counts them.
local skipped = 0
while removed < budget do
  local chunk = redis.call('ZRANGEBYSCORE', index, '-inf', max, 'LIMIT', skipped, 256)
  if #chunk == 0 then break end
  for _, id in ipairs(chunk) do
    if removed >= budget then break end
    if not remove(id) then skipped = skipped + 1 end
  end
end
if keep >= 0 and want == '' and removed < budget then
  local excess = redis.call('ZCARD', index) - keep
  if excess > 0 then
    local oldest = redis.call('ZRANGE', index, 0, math.min(excess, budget - removed) - 1)
    for _, id in ipairs(oldest) do remove(id) end
  end
end
if removed > 0 and ARGV[7] == 'prune' then
  redis.call('HINCRBY', p .. 'stats', 'pruned', removed)
end
return removed
