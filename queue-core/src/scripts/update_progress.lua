-- update_progress: store a running job's progress and announce it.
-- KEYS: 1 job hash, 2 events
-- ARGV: 1 id, 2 progress JSON, 3 events maxlen
-- Returns: 1, or 0 when the job no longer exists
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
emit(KEYS[2], ARGV[3], 'event', 'progress', 'ids', ARGV[1], 'progress', ARGV[2])
return 1
