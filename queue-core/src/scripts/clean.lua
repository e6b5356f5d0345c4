-- clean: delete up to `limit` finished jobs (completed, failed or cancelled) scored (finish
-- time, ms) at most `cutoff`, oldest first. The caller takes the cutoff once, before the first batch, so
-- a job finishing while the clean runs scores above it and stays. One bounded batch; the
-- caller loops.
--
-- KEYS: 1 finished set (completed, failed or cancelled), 2 events
-- ARGV: 1 cutoff ms, 2 limit, 3 job key prefix, 4 events maxlen
-- Returns: number of jobs deleted
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(ids))
delete_jobs(ARGV[3], ids, 1, #ids, 1)
emit(KEYS[2], ARGV[4], 'event', 'cleaned', 'count', #ids)
return #ids
