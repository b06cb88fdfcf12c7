-- Lists up to ARGV[3] jobs whose lease ran out at or before ARGV[2] (Unix
-- ms), oldest first, with their records. It changes nothing: the caller
-- applies the lifecycle's lease expiry to each and writes the outcome with
-- commit.lua, which refuses it if the job moved on in between. Batches keep
-- each call short, so recovering many stalled jobs never holds up claims.
--
-- ARGV: key prefix, now (Unix ms), limit.
-- Returns a flat array: the earliest lease expiry in the index (ms, or ''
-- when none runs), then id, record (HGETALL), id, record, ...
local p = ARGV[1]
local first = redis.call('ZRANGE', p .. 'leases', 0, 0, 'WITHSCORES')
local out = { first[2] or '' }
local ids = redis.call('ZRANGEBYSCORE', p .. 'leases', '-inf', tonumber(ARGV[2]), 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', p .. 'job:' .. id)
end
return out
