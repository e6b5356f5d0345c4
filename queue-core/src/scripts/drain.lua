-- drain: delete one bounded batch of jobs that had not started when the drain began, given
-- as what the caller read then, so a job added while the drain runs is never deleted:
-- either ids from a snapshot of the delayed set and the groups' queues, or (no id given) the lane entries not yet
-- delivered up to each lane's last entry id at the start (stream ids only grow, so a later
-- add has a greater one). Running jobs are left alone. The caller loops until a lanes call
-- returns 0. Flow children deleted tell their parents (outbox), as removed. A lean job's
-- entry (job.rs `lean_id`: the job is its lane entry alone) goes as the job it is, with
-- the record it may have been given.
--
-- KEYS: 1 meta, 2 delayed, 3 events, 4 outbox, 5 .. 4+L lane streams
-- ARGV: 1 group, 2 limit, 3 job key prefix, 4 events maxlen, 5 L,
--       6 .. 5+L lane priorities, 6+L .. 5+2L each lane's last entry id at the start,
--       then the delayed or grouped ids (at most `limit`; none = the lanes' entries)
-- Returns: number of jobs deleted
local meta, delayed, events, outbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, limit, job_prefix, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local L = tonumber(ARGV[5])
local n, undelivered = 0, 0

if #ARGV > 5 + 2 * L then
  local lane_of, last_of = {}, {}
  for i = 1, L do lane_of[ARGV[5 + i]] = 4 + i end
  local gone = {}
  local G = group_keys(job_prefix)
  for i = 6 + 2 * L, #ARGV do
    local id = ARGV[i]
    if on_index('ZREM', delayed, id) == 1 then
      gone[#gone + 1] = id
    else
      -- promoted since the snapshot (it fell due): still not started while its lane entry
      -- is undelivered, so it goes too
      -- (a key that is not a hash, a corrupt record, is no job waiting: left alone)
      local f = redis.pcall('HMGET', job_prefix .. id, 'state', 'sid', 'prio', 'ln', 'grp')
      if f.err then f = {'corrupt'} end
      local k = lane_of[lane_name(f[4], f[3])]
      if not f[1] and f[5] and f[2] == IN_GROUP then
        -- waiting in its group (the snapshot's grouped jobs, or promoted there since)
        if group_unwait(G, id, f[5]) then
          undelivered = undelivered + 1
          gone[#gone + 1] = id
        end
      elseif not f[1] and valid_sid(f[2]) and k then
        last_of[k] = last_of[k] or last_delivered(KEYS[k], group)
        if id_gt(f[2], last_of[k]) and redis.call('XDEL', KEYS[k], f[2]) == 1 then
          undelivered = undelivered + 1
          gone[#gone + 1] = id
        end
      end
    end
  end
  notify_removed(job_prefix, outbox, gone)
  n = delete_jobs(job_prefix, gone, 1, #gone, 1)
  -- (lean jobs with a record, a retry of one delayed say, leave the set claims look up)
  local lean = {}
  for _, id in ipairs(gone) do
    if lean_place(id) then lean[#lean + 1] = id end
  end
  if #lean > 0 then on_index('SREM', lean_records_key(job_prefix), unpack(lean)) end
else
  for i = 1, L do
    if n >= limit then break end
    local key, bound = KEYS[4 + i], ARGV[5 + L + i]
    local last = last_delivered(key, group)
    if id_gt(bound, last) then
      local entries = redis.call('XRANGE', key, '(' .. last, bound, 'COUNT', limit - n)
      if #entries > 0 then
        local sids, ids, lean = {}, {}, {}
        for _, e in ipairs(entries) do
          sids[#sids + 1] = e[1]
          if is_lean_entry(e[2]) then
            -- a lean job: its entry is the job, named by its place; it may have been given
            -- a record (a hash) meanwhile, which goes with it
            local lid = lean_id(ARGV[5 + i], e[1])
            ids[#ids + 1] = lid
            lean[#lean + 1] = lid
          else
            -- (an entry without a job id, a corrupt record, only goes; a lean job moved to
            -- another entry leaves the set of lean records too)
            local eid = entry_id(e[2])
            ids[#ids + 1] = eid
            if eid and lean_place(eid) then lean[#lean + 1] = eid end
          end
        end
        redis.call('XDEL', key, unpack(sids))
        notify_removed(job_prefix, outbox, ids)
        delete_jobs(job_prefix, ids, 1, #ids, 1)
        if #lean > 0 then on_index('SREM', lean_records_key(job_prefix), unpack(lean)) end
        undelivered = undelivered + #entries
        n = n + #entries
      end
    end
  end
end
if undelivered > 0 then hincr(meta, 'waiting', -undelivered) end
if n > 0 then emit(events, maxlen, 'event', 'drained', 'count', n) end
return n
