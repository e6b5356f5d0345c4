-- release: a worker gives back the claims it does not hold. A claim whose reply never
-- came (the call timed out while Redis was frozen, or the connection dropped after Redis
-- ran it) leaves entries pending to this worker that it knows nothing of: nobody would
-- renew their leases, and a reclaim would count a stall (or fail the job) although no
-- worker died. After such a failure the worker calls this: each entry pending to it that
-- is not in its list is acknowledged, and its job goes to the front lane to be claimed
-- again, with no stall counted (a grouped job goes back ahead in its group); one with a
-- cancel request (cancel.lua) ends cancelled instead. A lean job (prelude *Lean jobs*) is
-- given its record from its entry first (entry_job_id).
--
-- An entry a fast claim read but could not count out of `waiting` (claim_fast.lua's seal
-- answered 'gate') is named by the worker as uncounted: it goes back without being counted
-- again.
--
-- KEYS: 1 meta, 2 lanes, 3 front lane, 4 marker, 5 events, 6 .. lane streams
-- ARGV: 1 group, 2 consumer, 3 job key prefix, 4 events maxlen, 5 U, then U entries read
--       but not counted out of `waiting`, then the entries held, each as
--       "<KEYS index of the lane> <entry id>"
-- Returns: how many jobs were given back
local meta, lanes, front, marker, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, consumer, job_prefix, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local U = tonumber(ARGV[5])
local held, uncounted = {}, {}
for i = 6, 5 + U do uncounted[ARGV[i]] = true end
for i = 6 + U, #ARGV do held[ARGV[i]] = true end
-- the entries taken back here that `waiting` still counts (a fast claim read them but could
-- not count them out)
local counted = 0
local front_ready = on_index('ZSCORE', lanes, FRONT_LANE)
local requeued, cancelled = {}, {}
local G, C = group_keys(job_prefix), cancel_keys(job_prefix)
for k = 6, #KEYS do
  local key = KEYS[k]
  local p = redis.pcall('XPENDING', key, group, '-', '+', 1000, consumer)
  if type(p) == 'table' and not p.err then
    for _, e in ipairs(p) do
      local sid = e[1]
      if not held[k .. ' ' .. sid] then
        if uncounted[k .. ' ' .. sid] then counted = counted + 1 end
        local entry = redis.call('XRANGE', key, sid, sid)[1]
        redis.call('XACK', key, group, sid)
        redis.call('XDEL', key, sid)
        local id = entry and entry_job_id(job_prefix, key, sid, entry[2])
        local job = id and (job_prefix .. id)
        -- (a lean job leaves its entry here: no longer one of the lean jobs with a record)
        if id and lean_place(id) then on_index('SREM', lean_records_key(job_prefix), id) end
        local f = job and redis.call('HMGET', job, 'sid', 'grp', 'prio', 'par', 'cxl') or {}
        if f[1] == sid and f[5] == sid then
          -- a cancel request came meanwhile: it ends cancelled, not claimed again
          end_cancelled(job, id, C, now_ms(), sid, f[4])
          cancelled[#cancelled + 1] = id
          if f[2] and group_done(G, f[2]) then wake(marker, 0) end
        elseif f[1] == sid then
          if not f[2] then front_ready = open_front(meta, lanes, front, group, front_ready) end
          wait_again(G, job, id, front, f)
          requeued[#requeued + 1] = id
        end
      end
    end
  end
end
emit_ids(events, maxlen, 'cancelled', cancelled)
if #requeued ~= counted then hincr(meta, 'waiting', #requeued - counted) end
if #requeued > 0 then
  emit_ids(events, maxlen, 'waiting', requeued)
  wake(marker, 0)
end
return #requeued
