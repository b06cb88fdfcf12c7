-- Records successes, applying the lifecycle's rule for each (`Job::handle`
-- with `Event::Complete` in mechops-alloc; the tests compare the two): the
-- job must be running under the presented fencing token with its lease
-- not yet run out; it becomes completed with its result and finish time,
-- leaves the lease index for `done`, and frees its unique key. Anything
-- else changes nothing and answers 'reject' (the caller asks the lifecycle
-- why), or 'missing' for no record. One reply per job, in order.
--
-- Per job a read and one HSET (an HDEL only for fields that apply to the
-- attempt alone: a deadline, a cancel request, an earlier error); the
-- indexes and counters are written once for the batch. The lease expiry
-- `expires` stays on the record as the last lease's (readers ignore it
-- outside the running state).
--
-- Completions are also counted per second of `now` in `{P}completed:SECOND`
-- (one INCRBY and one EXPIRE per distinct second of the batch), which
-- the store's throughput sums over its window.
--
-- ARGV[1] is the key prefix, ARGV[2] how long (seconds) a per-second
-- completion count is kept; then, per job: id, token, now (Unix ns), now
-- (Unix ms), result.
local p = ARGV[1]
local keep = ARGV[2]
-- Decimal nanoseconds: shorter is smaller, equal lengths compare as text.
local function before(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local replies = {}
local ids, done = {}, {}
local per_handler = {}
local per_second = {}
for i = 3, #ARGV, 5 do
  local id, token, now_ns, now_ms, result = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = p .. 'job:' .. id
  local f = redis.call('HMGET', key, 'state', 'last_token', 'expires', 'unique', 'handler', 'ver',
    'deadline', 'cancel', 'error')
  if not f[1] then
    replies[#replies + 1] = 'missing'
  elseif f[1] ~= 'running' or f[2] ~= token or not before(now_ns, f[3]) then
    replies[#replies + 1] = 'reject'
  else
    redis.call('HSET', key, 'state', 'completed', 'result', result, 'finished', now_ns,
      'ver', tonumber(f[6]) + 1, 'cid', '')
    local stale = {}
    if f[7] then stale[#stale + 1] = 'deadline' end
    if f[8] then stale[#stale + 1] = 'cancel' end
    if f[9] then stale[#stale + 1] = 'error' end
    if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
    ids[#ids + 1] = id
    done[#done + 1] = now_ms
    done[#done + 1] = id
    per_handler[f[5]] = (per_handler[f[5]] or 0) + 1
    local second = tostring(math.floor(tonumber(now_ms) / 1000))
    per_second[second] = (per_second[second] or 0) + 1
    if f[4] and redis.call('HGET', p .. 'unique', f[4]) == id then
      redis.call('HDEL', p .. 'unique', f[4])
    end
    replies[#replies + 1] = 'ok'
  end
end
if #ids > 0 then
  for k = 1, #ids, 1000 do
    redis.call('ZREM', p .. 'leases', unpack(ids, k, math.min(k + 999, #ids)))
  end
  for k = 1, #done, 1000 do
    redis.call('ZADD', p .. 'done', unpack(done, k, math.min(k + 999, #done)))
  end
  for handler, n in pairs(per_handler) do
    redis.call('HINCRBY', p .. 'hrun', handler, -n)
  end
  redis.call('HINCRBY', p .. 'stats', 'completed_total', #ids)
  for second, n in pairs(per_second) do
    local key = p .. 'completed:' .. second
    redis.call('INCRBY', key, n)
    redis.call('EXPIRE', key, keep)
  end
end
return replies
