-- schedule_fire: claim due ticks, a compare-and-set on each schedule's due score. A worker
-- read a schedule due at tick `from` and asks to move it to the tick `to` after the ones it
-- fires (`from` and any ticks it came late for); only the first worker to ask still finds
-- `from` there, so a tick is claimed exactly once however many workers run (the claimer then
-- adds the ticks' jobs). The same call, with `from` and `to` swapped, gives the ticks back
-- when adding their jobs failed.
--
-- KEYS: 1 schedules (hash id -> definition), 2 schedules due (zset id -> next tick ms)
-- ARGV: per schedule 3 fields: id, from (tick ms), to (next tick ms, or -1: it has no next
--       tick, so it leaves the due set and stays listed with no next run)
-- Returns: per schedule 1 (claimed) or 0 (another worker moved it first, or it was removed)
local schedules, due = KEYS[1], KEYS[2]
local out = {}
for i = 1, #ARGV, 3 do
  local id, from, to = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local score = redis.call('ZSCORE', due, id)
  local tick = score and tonumber(score)
  local claimed = 0
  if tick and (tick ~= tick or tick < 0 or tick == math.huge) then
    -- a tick no clock reaches (-inf, negative, nan: a corrupt record) is due for ever and
    -- matches no `from`: it leaves the due set, or every worker would ask again and again
    redis.call('ZREM', due, id)
  -- scores are whole ms; floor so that a stray fraction cannot make a tick unclaimable
  elseif tick and math.floor(tick) == from then
    if redis.call('HEXISTS', schedules, id) == 0 then
      -- a due tick without a definition (should not happen): nothing to fire
      redis.call('ZREM', due, id)
    elseif to == '-1' then
      -- the last tick of a cron expression: fire it, then the schedule is never due again
      redis.call('ZREM', due, id)
      claimed = 1
    else
      redis.call('ZADD', due, to, id)
      claimed = 1
    end
  end
  out[#out + 1] = claimed
end
return out
