-- counts: an atomic snapshot of how many jobs are in each state, plus monotonic totals.
-- Waiting is the queue's counter of undelivered lane entries; active is what the lanes'
-- consumer group holds pending.
--
-- KEYS: 1 meta, 2 delayed, 3 completed, 4 failed, 5 .. lane streams
-- ARGV: 1 group, 2 lanes version the caller knows
-- Returns: {'lanes', version} when stale, else
--          {'ok', waiting, active, delayed, completed, failed, paused 0/1, completed_total,
--           failed_total}
local meta = KEYS[1]
local ver = redis.call('HGET', meta, 'lanes_ver') or '0'
if ver ~= ARGV[2] then return {'lanes', ver} end
local active = 0
for i = 5, #KEYS do
  active = active + redis.call('XPENDING', KEYS[i], ARGV[1])[1]
end
local m = redis.call('HMGET', meta, 'paused', 'completed_total', 'failed_total', 'waiting')
return {'ok', tonumber(m[4] or '0'), active, redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]), m[1] == '1' and 1 or 0, tonumber(m[2] or '0'), tonumber(m[3] or '0')}
