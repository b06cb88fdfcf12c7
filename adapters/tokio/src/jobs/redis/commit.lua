-- Writes a batch of changes to existing job records (new ones go in by
-- submit.lua), each only if its version is still the one the caller read
-- (compare and set), and moves each job to the index of its new state,
-- keeping the per-handler and shared-index counts, and publishes on the
-- wake channel when jobs became claimable. One reply per job, in order:
--   'ok'        written (or an earlier try of this same commit was)
--   'conflict'  the record changed since it was read: read it again
--   'missing'   the record is gone (pruned or purged)
--   'unique:ID' the unique key is held by pending job ID
--
-- A write counting `completed_total` also counts the completion in
-- `{P}completed:SECOND`, SECOND being the whole seconds of the record's
-- `finished` time, kept ARGV[2] seconds (see complete.lua).
--
-- ARGV[1] is the key prefix, ARGV[2] how long (seconds) a per-second
-- completion count is kept; then, per job:
--   id, expected version, commit id (random, so a
--   retried commit recognises its own earlier write), new state, index
--   (ready | delayed | leases | done | dead), score (for 'ready': the
--   priority rank, and the script adds the submission sequence), unique op
--   ('' | 'take' | 'free'), unique key,
--   n, n event counter names,
--   n, n field/value pairs to set,
--   n, n fields to delete.
local p = ARGV[1]
local keep = ARGV[2]
local indexes = { 'ready', 'delayed', 'leases', 'done', 'dead' }
local shared = { retry_scheduled = true, cancelled = true }
local pending = { queued = true, delayed = true, running = true, retry_scheduled = true }
local replies = {}
local queued = 0
local i = 3
while i <= #ARGV do
  local id, expect, cid = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local state, index, score = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local uop, ukey = ARGV[i + 6], ARGV[i + 7]
  i = i + 8
  local nstats = tonumber(ARGV[i])
  local stats_at = i + 1
  i = stats_at + nstats
  local nset = tonumber(ARGV[i])
  local set_at = i + 1
  i = set_at + 2 * nset
  local ndel = tonumber(ARGV[i])
  local del_at = i + 1
  i = del_at + ndel

  local key = p .. 'job:' .. id
  local ver = redis.call('HGET', key, 'ver')
  local reply = 'ok'
  if not ver then
    reply = 'missing'
  elseif ver ~= expect then
    reply = 'conflict'
  end
  if reply == 'ok' and uop == 'take' then
    local holder = redis.call('HGET', p .. 'unique', ukey)
    if holder and holder ~= id and pending[redis.call('HGET', p .. 'job:' .. holder, 'state')] then
      reply = 'unique:' .. holder
    end
  end
  if reply == 'ok' then
    if uop == 'take' then
      redis.call('HSET', p .. 'unique', ukey, id)
    elseif uop == 'free' and redis.call('HGET', p .. 'unique', ukey) == id then
      redis.call('HDEL', p .. 'unique', ukey)
    end
    -- Counted here only the states that share an index with another; the
    -- rest are the sizes of their indexes.
    local old = redis.call('HGET', key, 'state')
    if old ~= state then
      if shared[old] then redis.call('HINCRBY', p .. 'counts', old, -1) end
      if shared[state] then redis.call('HINCRBY', p .. 'counts', state, 1) end
    end
    local was_leased = false
    for _, name in ipairs(indexes) do
      if redis.call('ZREM', p .. name, id) == 1 and name == 'leases' then was_leased = true end
    end
    if index == 'ready' then
      score = tonumber(score) * 1125899906842624 + redis.call('INCR', p .. 'seq')
    end
    redis.call('ZADD', p .. index, score, id)
    local fields = { unpack(ARGV, set_at, set_at + 2 * nset - 1) }
    local n = #fields
    fields[n + 1], fields[n + 2] = 'state', state
    fields[n + 3], fields[n + 4] = 'ver', tonumber(ver) + 1
    fields[n + 5], fields[n + 6] = 'cid', cid
    redis.call('HSET', key, unpack(fields))
    if ndel > 0 then redis.call('HDEL', key, unpack(ARGV, del_at, del_at + ndel - 1)) end
    -- Running jobs per handler: every job in the lease index, provisional
    -- claims included, for the store-wide handler limits.
    local leased = index == 'leases'
    if leased ~= was_leased then
      redis.call('HINCRBY', p .. 'hrun', redis.call('HGET', key, 'handler'), leased and 1 or -1)
    end
    for s = stats_at, stats_at + nstats - 1 do
      redis.call('HINCRBY', p .. 'stats', ARGV[s], 1)
      if ARGV[s] == 'completed_total' then
        -- Decimal nanoseconds: the seconds are all but the last nine digits.
        local finished = redis.call('HGET', key, 'finished') or '0'
        local second = '0'
        if #finished > 9 then second = string.sub(finished, 1, -10) end
        local per_second = p .. 'completed:' .. second
        redis.call('INCRBY', per_second, 1)
        redis.call('EXPIRE', per_second, keep)
      end
    end
    if state == 'queued' then queued = queued + 1 end
  elseif reply == 'conflict' and redis.call('HGET', key, 'cid') == cid then
    reply = 'ok'
  end
  replies[#replies + 1] = reply
end
-- Jobs made claimable (a retry, a release, a recovered lease) wake idle
-- workers in every process.
if queued > 0 then
  redis.call('PUBLISH', p .. 'wake', queued)
end
return replies
