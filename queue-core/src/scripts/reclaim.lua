-- reclaim: recover jobs whose worker stopped renewing their lease (crashed, killed, cut off).
-- Runs under a short lock so concurrent reclaimers do not repeat each other's work. Each
-- expired lane entry is claimed (XAUTOCLAIM, min idle = lease); its job's stall counter goes
-- up; a job that stalled more than `max_stalls` times fails with that reason (a flow child
-- tells its parent, through the outbox), the others get a fresh entry in their lane and run
-- again; a job with a cancel request (cancel.lua) ends cancelled instead. Pending entries
-- whose stream entry is gone
-- (deleted ids) are acknowledged; the consistency sweep re-enqueues their jobs. Consumers
-- that hold nothing and have been idle for `consumer_idle` ms (stopped workers) are removed
-- from the group; one with pending entries never is (that would drop its entries).
--
-- A lease only measures a worker's silence while Redis could hear it. When Redis was down
-- or cut off from every worker (a restart, a network outage), every lease kept ageing
-- meanwhile, yet their workers are alive and will renew them as soon as they reach Redis
-- again. So the queue remembers when a reclaimer last looked (`rc_seen` in meta): a call
-- that finds no look for longer than `gap` ms (no reclaimer could reach Redis) restarts the
-- lease clock (`rc_resumed`), and nothing is reclaimed until a whole lease has passed since:
-- time enough for every live worker to renew, so an outage of any length makes no stall and
-- no failure. A worker that really died is reclaimed a lease after the clock restarted.
--
-- A lean job (prelude *Lean jobs*) is given its record from its entry before that entry is
-- deleted (entry_job_id): it runs again from its record.
--
-- A requeued job goes to the queue's front lane (created here when new), read before every
-- priority lane: it started before the jobs still waiting, so it keeps its place ahead of
-- them, in the order it was reclaimed.
--
-- KEYS: 1 meta, 2 failed, 3 marker, 4 events, 5 lock, 6 per-minute failed list, 7 lanes,
--       8 front lane stream, 9 .. the other lane streams
-- ARGV: 1 group, 2 reclaimer consumer, 3 lease ms, 4 max stalls, 5 events maxlen,
--       6 job key prefix, 7 lock ttl ms, 8 max entries per lane, 9 consumer idle ms,
--       10 gap ms
-- Returns: {requeued, failed, acknowledged deleted}, {-1} when another reclaimer holds
-- the lock, or {-2} while the lease clock restarts after an outage
local meta, failed, marker, events, lock, per_minute =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local lanes, front = KEYS[7], KEYS[8]
local group, reclaimer, lease, max_stalls = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local maxlen, job_prefix, lock_ttl, budget = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local consumer_idle, gap = tonumber(ARGV[9]), tonumber(ARGV[10])

local now = now_ms()
local clock = redis.call('HMGET', meta, 'rc_seen', 'rc_resumed')
local seen, resumed = tonumber(clock[1]), tonumber(clock[2]) or 0
if not seen or now - seen > gap or now < seen then
  resumed = now
  redis.call('HSET', meta, 'rc_resumed', ms_text(now))
end
redis.call('HSET', meta, 'rc_seen', ms_text(now))
if now - resumed < tonumber(lease) then return {-2} end
if not redis.call('SET', lock, reclaimer, 'NX', 'PX', lock_ttl) then return {-1} end
local requeued, failed_ids, cancelled, gone = {}, {}, {}, 0
local G, C = group_keys(job_prefix), cancel_keys(job_prefix)
local front_ready = on_index('ZSCORE', lanes, FRONT_LANE)
local reason = 'job stalled more than ' .. max_stalls ..
  ' time(s): its worker stopped renewing the lease (crashed or cut off)'
-- the front lane first (when it exists): jobs reclaimed again stay in it
local first = front_ready and 8 or 9
for k = first, #KEYS do
  local key = KEYS[k]
  local cursor, seen = '0-0', 0
  repeat
    local res = redis.call('XAUTOCLAIM', key, group, reclaimer, lease, cursor, 'COUNT', 100)
    cursor = res[1]
    for _, entry in ipairs(res[2]) do
      seen = seen + 1
      local sid, fields = entry[1], entry[2]
      redis.call('XACK', key, group, sid)
      redis.call('XDEL', key, sid)
      local id = entry_job_id(job_prefix, key, sid, fields)
      local job = id and (job_prefix .. id)
      -- (a lean job leaves its entry here: no longer one of the lean jobs with a record)
      if id and lean_place(id) then on_index('SREM', lean_records_key(job_prefix), id) end
      -- only a job that still points at this entry is requeued: an entry it no longer
      -- points at is an orphan (the job waits or runs on another one), dropped above
      local f = job and redis.call('HMGET', job, 'sid', 'grp', 'prio', 'par', 'cxl', 'run',
        'att') or {}
      if f[1] == sid and f[5] == sid then
        -- its cancel request outlived its worker: it ends cancelled, not run again, with the
        -- attempt it ran as its lease renewals recorded it (`run`, extend_lease.lua), as
        -- when its worker ends it (fail_or_retry.lua). (One never renewed may not have
        -- started: a claim ahead of the worker's free slots.)
        end_cancelled(job, id, C, now, sid, f[4])
        local a, at = string.match(f[6] or '', '^(%d+):(%d+)$')
        if a and tonumber(a) == (tonumber(f[7] or '0') or 0) + 1 then
          redis.call('HSET', job, 'att', a, 'started', at)
        end
        cancelled[#cancelled + 1] = id
        if f[2] and group_done(G, f[2]) then wake(marker, 0) end
      elseif f[1] == sid then
        -- (a corrupt counter must not stop every reclaim of the queue: it counts from 1)
        local stalls = hincr(job, 'stalls', 1)
        if stalls > max_stalls then
          fail_unrun(job, id, reason, failed, now)
          failed_ids[#failed_ids + 1] = id
          if f[2] and group_done(G, f[2]) then wake(marker, 0) end
          if f[4] then notify_parent(outbox_key(job_prefix), id, f[4], 'f', reason) end
        else
          if not f[2] then front_ready = open_front(meta, lanes, front, group, front_ready) end
          wait_again(G, job, id, front, f)
          requeued[#requeued + 1] = id
        end
      end
    end
    -- 7.0+: ids still pending whose entries were deleted; acknowledge them so they stop
    -- showing as active (their jobs are found by the sweep)
    local deleted = res[3]
    if deleted and #deleted > 0 then
      redis.call('XACK', key, group, unpack(deleted))
      gone = gone + #deleted
    end
  until cursor == '0-0' or seen >= budget
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', key, group)) do
    local name, pending, idle
    for f = 1, #c, 2 do
      if c[f] == 'name' then name = c[f + 1]
      elseif c[f] == 'pending' then pending = c[f + 1]
      elseif c[f] == 'idle' then idle = c[f + 1] end
    end
    if pending == 0 and idle and idle > consumer_idle then
      redis.call('XGROUP', 'DELCONSUMER', key, group, name)
    end
  end
end
if #requeued > 0 then
  hincr(meta, 'waiting', #requeued)
  emit_ids(events, maxlen, 'stalled', requeued)
  wake(marker, 0)
end
emit_ids(events, maxlen, 'cancelled', cancelled)
if #failed_ids > 0 then
  hincr(meta, 'failed_total', #failed_ids)
  bump_minute(meta, per_minute, 'f', now, #failed_ids)
  emit(events, maxlen, 'event', 'failed', 'ids', table.concat(failed_ids, ' '), 'error', reason)
end
return {#requeued, #failed_ids, gone}
