-- worker_beat: one heartbeat of a worker. Its record (identity and running jobs) is written
-- anew with a TTL, and its registry entry moves to the record's new expiry; registry entries
-- past their expiry (workers killed without leaving: their records expired with them) are
-- pruned, a bounded number per call. A registry or record of the wrong type (a corrupt
-- record) is replaced.
--
-- KEYS: 1 registry (zset), 2 this worker's record (hash)
-- ARGV: 1 worker id, 2 info (JSON), 3 TTL ms, 4 prune budget
-- Returns: the Redis clock, ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'zset' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'info', ARGV[2], 'seen', now)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return now
