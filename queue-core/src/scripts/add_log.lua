-- add_log: append a line to a job's log, keeping the newest `max` lines. A lean job (job.rs
-- `lean_id`: its lane entry alone, no hash) is given its record first, from its entry: a
-- log is kept only beside a job's record (and goes with it).
-- A queue's first log says so in its meta (`lg`, prelude delete_jobs): the deletions of a
-- queue that never had one skip its jobs' log keys.
-- KEYS: 1 job hash, 2 job logs list, 3 the lane stream a lean job's id names (for other
--       ids, any lane of the queue), 4 meta
-- ARGV: 1 line, 2 max lines, 3 id, 4 group
-- Returns: the number of lines kept, or 0 when the job no longer exists
local job, id = KEYS[1], ARGV[3]
-- (a lean job that finished, its entry acknowledged, gets no record: it no longer exists)
lean_record_by_id(job, id, KEYS[3], ARGV[4])
if redis.call('EXISTS', job) == 0 then return 0 end
-- (first: a meta that is not a hash, a corrupt record, fails the call before any log)
redis.call('HSET', KEYS[4], 'lg', '1')
local n = redis.call('RPUSH', KEYS[2], ARGV[1])
local max = tonumber(ARGV[2])
if n > max then
  redis.call('LTRIM', KEYS[2], n - max, -1)
  n = max
end
return n
