-- extend_lease: a live worker renews the lease of the jobs it holds, so a healthy long job is
-- never reclaimed. A lease is the idle time of the job's pending lane entry; XCLAIM with
-- JUSTID resets it without counting a delivery. Only entries this consumer still owns are
-- renewed: one reclaimed by another worker is reported back as lost; one this worker's
-- finisher has just recorded is not (it is simply no longer renewed). Renewal resets the
-- entry's idle time, so it also records the attempt's number and start (`run` =
-- "<attempt>:<ms>") for readers of a long-running job.
--
-- KEYS: lane streams
-- ARGV: 1 group, 2 consumer, 3 job key prefix, then per lane (in KEYS order): n, then n
--       triples: entry id, job id, run tag
-- Returns: per lane (in KEYS order), the ids of the entries this consumer no longer owns
-- (an entry id is unique only within its stream)
local group, consumer, job_prefix = ARGV[1], ARGV[2], ARGV[3]
local out = {}
local a = 4
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  local owned, lost = {}, {}
  out[k] = lost
  for i = 0, n - 1 do
    local sid, id, run = ARGV[a + 1 + i * 3], ARGV[a + 2 + i * 3], ARGV[a + 3 + i * 3]
    local p = redis.call('XPENDING', KEYS[k], group, sid, sid, 1)
    local job = job_prefix .. id
    if #p > 0 and p[1][2] == consumer then
      owned[#owned + 1] = sid
      -- a lean job (prelude *Lean jobs*) running this long gets its record, from its entry,
      -- for the attempt to be kept (its start, and its number should it end at a reclaim)
      local prio, lean_sid = lean_place(id)
      if prio and lean_sid == sid then
        lean_record(job_prefix, job, id, KEYS[k], prio, sid, nil, nil)
      end
      -- (a key that is not a hash, a corrupt record, is not written)
      if redis.call('TYPE', job)['ok'] == 'hash' then redis.call('HSET', job, 'run', run) end
    elseif #p > 0 then
      lost[#lost + 1] = sid
    else
      -- acknowledged: by this worker's finisher (the outcome is recorded under this very
      -- entry, or the job was deleted with it) while this renewal was on its way, or by a
      -- reclaimer, which gives the job another entry or fails it without one
      local f = redis.pcall('HMGET', job, 'sid', 'state')
      if f.err then f = {} end
      local recorded = (f[1] == sid and f[2]) or (not f[1] and not f[2]
        and redis.call('EXISTS', job) == 0)
      if not recorded then lost[#lost + 1] = sid end
    end
  end
  a = a + n * 3 + 1
  if n > 0 then
    if #owned > 0 then
      owned[#owned + 1] = 'JUSTID'
      redis.call('XCLAIM', KEYS[k], group, consumer, 0, unpack(owned))
    end
  end
end
return out
