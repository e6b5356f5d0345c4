-- schedule_upsert: store (or replace) a schedule's definition and set its first tick.
-- An `every` schedule ticks on multiples of its interval, so its first tick is computed
-- here from the Redis clock. A cron schedule's first tick is computed by the caller (cron
-- lives in Rust) and refused if it is no longer in the future: a tick at or before now may
-- already have been fired under the old definition, and must not be due again.
--
-- KEYS: 1 schedules (hash id -> definition), 2 schedules due (zset id -> next tick ms)
-- ARGV: 1 id, 2 definition (JSON), 3 interval ms (0 = cron), 4 first tick ms (cron)
-- Returns: {first tick, 1 if it replaced a schedule else 0}, or {-1, 0} when the cron tick
--          has already passed (compute it again and retry)
local schedules, due = KEYS[1], KEYS[2]
local id, def = ARGV[1], ARGV[2]
local every = tonumber(ARGV[3])
local now = now_ms()
local first
if every > 0 then
  first = math.floor(now / every) * every + every
else
  first = tonumber(ARGV[4])
  if first <= now then return {-1, 0} end
end
local replaced = 0
if redis.call('HSET', schedules, id, def) == 0 then replaced = 1 end
redis.call('ZADD', due, string.format('%.0f', first), id)
return {first, replaced}
