-- Inserts new job records, each with its index entry, refusing a taken ID
-- or a unique key a pending job holds. One reply per job, in order:
--   'ok'        written (or an earlier try of this same submission was)
--   'exists'    the ID is taken
--   'unique:ID' the unique key is held by pending job ID
-- Per batch, not per job: one sequence reservation, one ZADD per index,
-- one counter increment and one wake message, so a job costs Redis a read
-- of its key and one HSET.
--
-- ARGV[1] is the key prefix, ARGV[2] the number of jobs; then, per job:
--   id, commit id (random, so a retried submission recognises its own
--   earlier write), index ('ready' | 'delayed'), score (for 'ready' the
--   priority rank, and the script adds the submission sequence; for
--   'delayed' the ready time in ms), unique key ('' for none),
--   n, n field/value pairs of the record (the script adds 'cid').
local p = ARGV[1]
local count = tonumber(ARGV[2])
local pending = { queued = true, delayed = true, running = true, retry_scheduled = true }
-- Sequence numbers for every job of the batch at once; refused jobs leave
-- gaps, which order does not mind.
local seq = redis.call('INCRBY', p .. 'seq', count) - count
local ready, delayed = {}, {}
local written = 0
local replies = {}
local i = 3
while i <= #ARGV do
  local id, cid, index, score, ukey = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local nset = tonumber(ARGV[i + 5])
  local set_at = i + 6
  i = set_at + 2 * nset
  seq = seq + 1
  local key = p .. 'job:' .. id
  local reply = 'ok'
  if redis.call('EXISTS', key) == 1 then
    reply = redis.call('HGET', key, 'cid') == cid and 'done' or 'exists'
  elseif ukey ~= '' then
    local holder = redis.call('HGET', p .. 'unique', ukey)
    if holder and holder ~= id and pending[redis.call('HGET', p .. 'job:' .. holder, 'state')] then
      reply = 'unique:' .. holder
    else
      redis.call('HSET', p .. 'unique', ukey, id)
    end
  end
  if reply == 'ok' then
    redis.call('HSET', key, 'cid', cid, unpack(ARGV, set_at, set_at + 2 * nset - 1))
    if index == 'ready' then
      ready[#ready + 1] = tonumber(score) * 1125899906842624 + seq
      ready[#ready + 1] = id
    else
      delayed[#delayed + 1] = score
      delayed[#delayed + 1] = id
    end
    written = written + 1
  elseif reply == 'done' then
    reply = 'ok'
  end
  replies[#replies + 1] = reply
end
-- ZADD in slices, well below Lua's limit on unpacked values.
local function zadd(key, pairs)
  for k = 1, #pairs, 1000 do
    redis.call('ZADD', key, unpack(pairs, k, math.min(k + 999, #pairs)))
  end
end
zadd(p .. 'ready', ready)
zadd(p .. 'delayed', delayed)
if written > 0 then
  redis.call('HINCRBY', p .. 'stats', 'submitted', written)
end
if #ready > 0 then
  redis.call('PUBLISH', p .. 'wake', #ready / 2)
end
return replies
