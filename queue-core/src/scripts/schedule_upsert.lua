-- schedule_upsert: store (or replace) a schedule's definition and set its first tick (an
-- unchanged definition keeps its pending tick).
-- An `every` schedule ticks on multiples of its interval, so its first tick is computed
-- here from the Redis clock. A cron schedule's first tick is computed by the caller (cron
-- lives in Rust) and refused if it is no longer in the future: a tick at or before now may
-- already have been fired under the old definition, and must not be due again. It wakes the
-- schedule loops (a loop sleeps up to a second when nothing is due soon), so the first tick,
-- which may be only milliseconds away, fires on time.
--
-- KEYS: 1 schedules (hash id -> definition), 2 schedules due (zset id -> next tick ms),
--       3 schedule loops' wake-up marker (zset, loops BZPOPMIN it)
-- ARGV: 1 id, 2 definition (JSON), 3 interval ms (0 = cron), 4 first tick ms (cron)
-- Returns: {first tick, 1 if it replaced a schedule else 0}, or {-1, 0} when the cron tick
--          has already passed (compute it again and retry)
local schedules, due, wake = KEYS[1], KEYS[2], KEYS[3]
local id, def = ARGV[1], ARGV[2]
local every = tonumber(ARGV[3])
local now = now_ms()
-- the same definition again (an application upserting its schedules at every start or
-- deploy): its pending tick stays, even one due now, or already past with no worker to
-- fire it. Replacing it with the next tick would skip the one due now.
if redis.call('HGET', schedules, id) == def then
  local at = redis.call('ZSCORE', due, id)
  if at then
    redis.call('ZADD', wake, 0, 'upsert')
    redis.call('PEXPIRE', wake, 10000)
    return {tonumber(at), 1}
  end
end
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
-- score 0: "look now"; a marker no loop was waiting for is of no use later (a loop that
-- starts looks at the due set first), so it expires
redis.call('ZADD', wake, 0, 'upsert')
redis.call('PEXPIRE', wake, 10000)
return {first, replaced}
