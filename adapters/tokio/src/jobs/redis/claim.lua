-- Promotes due delayed and retry-scheduled jobs (at most ARGV[5]), then
-- claims up to ARGV[3] jobs from the ready set, best priority first and in
-- submission order within a priority, skipping jobs whose handler has as
-- many jobs running as its limit (ARGV[10..]: handler, limit pairs).
--
-- A claim applies the lifecycle's claim rule (`Job::handle(Event::Claim)`
-- in mechops-alloc; the tests compare the two): one more attempt, the next
-- fencing token, a lease until ARGV[7], a deadline of start plus the job's
-- timeout, start time now, no finish time or progress. Times are Unix
-- nanoseconds as decimal text; Lua's doubles cannot hold them, so a
-- deadline is added from milliseconds and the nanoseconds below them.
--
-- ARGV: key prefix, now (Unix ms), limit, lease expiry (Unix ms, rounded
-- up), promotion limit, now (ns), lease expiry (ns), now's nanoseconds
-- below the millisecond, worker name, then handler limits.
-- Returns a flat array, eight entries per claimed job: id, handler, args,
-- attempt, max attempts, token, lease expiry (ns), deadline (ns, or '').
local p = ARGV[1]
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local expires_ms = tonumber(ARGV[4])
local now_ns, expires_ns = ARGV[6], ARGV[7]
local now_sub = tonumber(ARGV[8])
local worker = ARGV[9]
local due = redis.call('ZRANGEBYSCORE', p .. 'delayed', '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(due) do
  local key = p .. 'job:' .. id
  redis.call('ZREM', p .. 'delayed', id)
  local rank = tonumber(redis.call('HGET', key, 'rank') or '1')
  redis.call('ZADD', p .. 'ready', rank * 1125899906842624 + redis.call('INCR', p .. 'seq'), id)
  if redis.call('HGET', key, 'state') == 'retry_scheduled' then
    redis.call('HINCRBY', p .. 'counts', 'retry_scheduled', -1)
  end
  redis.call('HSET', key, 'state', 'queued')
  redis.call('HDEL', key, 'state_at')
  redis.call('HINCRBY', key, 'ver', 1)
end

local taken = {}
if #ARGV <= 9 then
  local popped = redis.call('ZPOPMIN', p .. 'ready', limit)
  for k = 1, #popped, 2 do taken[#taken + 1] = popped[k] end
else
  local room = {}
  for k = 10, #ARGV - 1, 2 do
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
    local first = #taken + 1
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
    for k = first, #taken do redis.call('ZREM', p .. 'ready', taken[k]) end
  end
end

-- `ms` and `sub` (0..999999 ns) plus a duration of `d` ns given as text.
local function add_ns(ms, sub, d)
  local d_ms = tonumber(string.sub(d, 1, -7)) or 0
  local d_sub = tonumber(string.sub(d, -6))
  local total_sub = sub + d_sub
  local carry = math.floor(total_sub / 1000000)
  return string.format('%d%06d', ms + d_ms + carry, total_sub - carry * 1000000)
end

-- Per job a read and one HSET (and an HDEL on a job tried before, for
-- what its last attempt left); the lease index and the handler counts are
-- written once for the batch.
local out = {}
local leased = {}
local per_handler = {}
for _, id in ipairs(taken) do
  local key = p .. 'job:' .. id
  local f = redis.call('HMGET', key, 'state', 'attempts', 'max_attempts', 'last_token', 'timeout',
    'handler', 'ver', 'args')
  local attempts = tonumber(f[2] or '0')
  if f[1] == 'queued' and attempts < tonumber(f[3]) then
    local deadline = ''
    if f[5] then
      deadline = add_ns(now, now_sub, f[5])
    end
    -- A queued job has no `state_at` (promotion and the other writes to
    -- `queued` delete it); one never claimed has none of these either.
    if attempts > 0 or f[4] then
      redis.call('HDEL', key, 'finished', 'prog_f', 'prog_msg', 'cancel', 'deadline')
    end
    attempts = attempts + 1
    local token = tonumber(f[4] or '0') + 1
    if f[5] then
      redis.call('HSET', key, 'state', 'running', 'attempts', attempts, 'last_token', token,
        'expires', expires_ns, 'started', now_ns, 'worker', worker, 'ver', tonumber(f[7]) + 1,
        'cid', '', 'deadline', deadline)
    else
      redis.call('HSET', key, 'state', 'running', 'attempts', attempts, 'last_token', token,
        'expires', expires_ns, 'started', now_ns, 'worker', worker, 'ver', tonumber(f[7]) + 1,
        'cid', '')
    end
    leased[#leased + 1] = expires_ms
    leased[#leased + 1] = id
    per_handler[f[6]] = (per_handler[f[6]] or 0) + 1
    local claimed = { id, f[6], f[8], string.format('%d', attempts), f[3],
      string.format('%d', token), expires_ns, deadline }
    for k = 1, 8 do out[#out + 1] = claimed[k] end
  elseif f[1] then
    -- Not claimable after all (the record and the index disagree): the
    -- reaper looks at it again after one lease.
    leased[#leased + 1] = expires_ms
    leased[#leased + 1] = id
  end
end
for k = 1, #leased, 1000 do
  redis.call('ZADD', p .. 'leases', unpack(leased, k, math.min(k + 999, #leased)))
end
for handler, n in pairs(per_handler) do
  redis.call('HINCRBY', p .. 'hrun', handler, n)
end
return out
