-- add_log: append a line to a job's log, keeping the newest `max` lines.
-- KEYS: 1 job hash, 2 job logs list
-- ARGV: 1 line, 2 max lines
-- Returns: the number of lines kept, or 0 when the job no longer exists
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('RPUSH', KEYS[2], ARGV[1])
local max = tonumber(ARGV[2])
if n > max then
  redis.call('LTRIM', KEYS[2], n - max, -1)
  n = max
end
return n
