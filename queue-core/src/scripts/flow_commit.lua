-- flow_commit: commits (or takes back) staged jobs of a flow, of one queue. Committing
-- makes a job what its flow says: a parent with children left waits for them (in the
-- waiting-children set), a parent whose children all finished already runs (or fails, if
-- one failed it), and a job without children runs. Taking back deletes a job that is still
-- staged (its flow's add failed). A job no longer staged is left alone, so a commit sent
-- twice, or after a worker committed the job, does nothing.
--
-- KEYS, ARGV 1-3: as flow.lua; ARGV: 4 'commit' or 'drop', 5 the staging add's token
--   (only jobs it staged are touched; '' for any: a worker's), then the job ids
-- Returns: how many jobs were committed (or dropped), and 1 if the outbox was written
local mode, token = ARGV[4], ARGV[5]
local now = now_ms()
local touched = {}
for i = 6, #ARGV do
  local id = ARGV[i]
  local job = Q.job_prefix .. id
  local f = flow_fields(job)
  if f and f[1] == 'waiting_children' and f[2] and (token == '' or f[2] == token) then
    touched[#touched + 1] = id
    if mode == 'drop' then
      delete_job(Q.job_prefix, id)
    else
      f[2] = false
      -- a job without children runs: release clears `stg` with the rest
      if (tonumber(f[3]) or 0) > 0 or f[8] then redis.call('HDEL', job, 'stg') end
      parent_next(job, id, f, now, false)
    end
  end
end
for i = 1, #touched, SLICE do
  redis.call('ZREM', Q.staged, unpack(touched, i, math.min(i + SLICE - 1, #touched)))
end
return {#touched, finish(now)}
