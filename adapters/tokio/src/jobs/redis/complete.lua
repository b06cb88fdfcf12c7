-- Records successes, applying the lifecycle's rule for each (`Job::handle`
-- with `Event::Complete` in mechops-alloc; the tests compare the two): the
-- job must be running under the presented fencing token with its lease
-- not yet run out; it becomes completed with its result and finish time,
-- leaves the lease index for `done`, and frees its unique key. Anything
-- else changes nothing and answers 'reject' (the caller asks the lifecycle
-- why), or 'missing' for no record. One reply per job, in order.
--
-- ARGV[1] is the key prefix; then, per job: id, token, now (Unix ns), now
-- (Unix ms), result.
local p = ARGV[1]
-- Decimal nanoseconds: shorter is smaller, equal lengths compare as text.
local function before(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local replies = {}
for i = 2, #ARGV, 5 do
  local id, token, now_ns, now_ms, result = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = p .. 'job:' .. id
  local f = redis.call('HMGET', key, 'state', 'token', 'expires', 'unique', 'handler', 'ver')
  if not f[1] then
    replies[#replies + 1] = 'missing'
  elseif f[1] ~= 'running' or f[2] ~= token or not before(now_ns, f[3]) then
    replies[#replies + 1] = 'reject'
  else
    redis.call('HSET', key, 'state', 'completed', 'result', result, 'finished', now_ns,
      'ver', tonumber(f[6]) + 1, 'cid', '')
    redis.call('HDEL', key, 'attempt', 'token', 'expires', 'deadline', 'cancel', 'error')
    redis.call('ZREM', p .. 'leases', id)
    redis.call('ZADD', p .. 'done', now_ms, id)
    redis.call('HINCRBY', p .. 'hrun', f[5], -1)
    redis.call('HINCRBY', p .. 'stats', 'completed_total', 1)
    if f[4] and redis.call('HGET', p .. 'unique', f[4]) == id then
      redis.call('HDEL', p .. 'unique', f[4])
    end
    replies[#replies + 1] = 'ok'
  end
end
return replies
