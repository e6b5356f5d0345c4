-- set_limits: set or clear one of a queue's limits, kept in its meta hash and enforced by
-- move_to_active: `rate_max` + `rate_ms` (at most rate_max job starts per window of rate_ms,
-- counted in the limiter key) or `conc` (at most conc jobs active over all workers).
-- Workers held back by a limit wait until it could let work through again; when a limit is
-- loosened (raised, cleared, a shorter window) they are woken to look at once.
--
-- KEYS: 1 meta, 2 marker, 3 rate limiter, 4 events
-- ARGV: 1 'rate' or 'conc', 2 the max ('' clears the limit), 3 window ms (rate only),
--       4 events maxlen
-- Returns: 1
local meta, marker, limiter, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kind, max, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[4]
local loosened = false

if kind == 'rate' then
  local old = redis.call('HMGET', meta, 'rate_max', 'rate_ms')
  local old_max, old_ms = tonumber(old[1]), tonumber(old[2])
  if max then
    local ms = tonumber(ARGV[3])
    redis.call('HSET', meta, 'rate_max', ARGV[2], 'rate_ms', ARGV[3])
    -- a window in progress never outlasts the new window length
    local ttl = redis.call('PTTL', limiter)
    if ttl == -1 or ttl > ms then redis.call('PEXPIRE', limiter, ms) end
    loosened = old_max ~= nil and (max > old_max or ms < (old_ms or ms))
  else
    redis.call('HDEL', meta, 'rate_max', 'rate_ms')
    -- a limit set later starts with a fresh window
    redis.call('DEL', limiter)
    loosened = old_max ~= nil
  end
elseif kind == 'conc' then
  local old = tonumber(redis.call('HGET', meta, 'conc'))
  if max then
    redis.call('HSET', meta, 'conc', ARGV[2])
    loosened = old ~= nil and max > old
  else
    redis.call('HDEL', meta, 'conc')
    loosened = old ~= nil
  end
else
  return redis.error_reply('set_limits: unknown limit ' .. tostring(kind))
end

if loosened then wake(marker, 0) end
emit(events, maxlen, 'event', 'limits')
return 1
