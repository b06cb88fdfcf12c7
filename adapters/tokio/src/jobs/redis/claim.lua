-- Promotes due delayed and retry-scheduled jobs (at most ARGV[5]), then
-- takes up to ARGV[3] jobs from the ready set, best priority first and in
-- submission order within a priority. Each taken job gets a provisional
-- lease of ARGV[4] ms in the lease index before its record says so: if the
-- caller never writes the claim (it died, or lost the reply), the reaper
-- finds the job there once that lease has run out and queues it again.
--
-- ARGV: key prefix, now (Unix ms), limit, lease (ms), promotion limit.
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
local popped = redis.call('ZPOPMIN', p .. 'ready', limit)
local out = {}
for k = 1, #popped, 2 do
  local id = popped[k]
  redis.call('ZADD', p .. 'leases', now + lease, id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', p .. 'job:' .. id)
end
return out
