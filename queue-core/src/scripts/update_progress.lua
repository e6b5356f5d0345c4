-- update_progress: store a running job's progress and announce it. A lean job (job.rs
-- `lean_id`: its lane entry alone, no hash) is given its record first, from its entry, to
-- hold it.
-- KEYS: 1 job hash, 2 events, 3 the lane stream a lean job's id names (for other ids, any
--       lane of the queue)
-- ARGV: 1 id, 2 progress JSON, 3 events maxlen, 4 group
-- Returns: 1, or 0 when the job no longer exists
local job, id = KEYS[1], ARGV[1]
-- (a lean job that finished, its entry acknowledged, gets no record: it no longer exists)
lean_record_by_id(job, id, KEYS[3], ARGV[4])
if redis.call('EXISTS', job) == 0 then return 0 end
redis.call('HSET', job, 'progress', ARGV[2])
emit(KEYS[2], ARGV[3], 'event', 'progress', 'ids', id, 'progress', ARGV[2])
return 1
