-- Promotes due delayed and retry-scheduled jobs (at most ARGV[5]), then
-- takes up to ARGV[3] jobs from the ready set, best priority first and in
-- submission order within a priority, skipping jobs whose handler has as
-- many jobs leased as its limit (ARGV[6..]: handler, limit pairs). Each
-- taken job gets a provisional lease of ARGV[4] ms in the lease index
-- before its record says so: if the caller never writes the claim (it
-- died, or lost the reply), the reaper finds the job there once that lease
-- has run out and queues it again.
--
-- ARGV: key prefix, now (Unix ms), limit, lease (ms), promotion limit,
-- then handler limits.
-- Returns a flat array: id, record (HGETALL), id, record, ...
local p = ARGV[1]
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', p .. 'delayed', '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(due) do
  local key = p .. 'job:' .. id
  redis.call('ZREM', p .. 'delayed', id)
  local rank = tonumber(redis.call('HGET', key, 'rank') or '1')
  redis.call('ZADD', p .. 'ready', rank * 1125899906842624 + redis.call('INCR', p .. 'seq'), id)
  local old = redis.call('HGET', key, 'state')
  if old then redis.call('HINCRBY', p .. 'counts', old, -1) end
  redis.call('HINCRBY', p .. 'counts', 'queued', 1)
  redis.call('HSET', key, 'state', 'queued')
  redis.call('HDEL', key, 'state_at')
  redis.call('HINCRBY', key, 'ver', 1)
end

local taken = {}
if #ARGV <= 5 then
  local popped = redis.call('ZPOPMIN', p .. 'ready', limit)
  for k = 1, #popped, 2 do taken[#taken + 1] = popped[k] end
else
  local room = {}
  for k = 6, #ARGV - 1, 2 do
    local running = tonumber(redis.call('HGET', p .. 'hrun', ARGV[k]) or '0')
    room[ARGV[k]] = tonumber(ARGV[k + 1]) - running
  end
  -- Jobs skipped for a full handler stay in the set, so the offset counts
  -- them; the scan is bounded so a long run of them never stalls a claim.
  local offset = 0
  local budget = 1024 + 16 * limit
  while #taken < limit and offset < budget do
    local chunk = redis.call('ZRANGE', p .. 'ready', offset, offset + 127)
    if #chunk == 0 then break end
    for _, id in ipairs(chunk) do
      if #taken >= limit then break end
      local handler = redis.call('HGET', p .. 'job:' .. id, 'handler')
      local left = room[handler]
      if left == nil or left > 0 then
        if left then room[handler] = left - 1 end
        taken[#taken + 1] = id
      else
        offset = offset + 1
      end
    end
    for k = 1, #taken do redis.call('ZREM', p .. 'ready', taken[k]) end
  end
end

local out = {}
for _, id in ipairs(taken) do
  local key = p .. 'job:' .. id
  redis.call('ZADD', p .. 'leases', now + lease, id)
  redis.call('HINCRBY', p .. 'hrun', redis.call('HGET', key, 'handler'), 1)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', key)
end
return out
