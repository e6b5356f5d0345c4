-- schedule_remove: delete a schedule's definition and its due tick, so no worker can claim
-- another of its ticks (the jobs it already added stay).
--
-- KEYS: 1 schedules (hash id -> definition), 2 schedules due (zset id -> next tick ms)
-- ARGV: 1 id
-- Returns: 1 if the schedule existed, else 0
local n = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
