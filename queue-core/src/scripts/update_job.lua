-- update_job: change a stored job's data, or its priority. A waiting job moves to the back of
-- its new lane (created if new); a grouped one takes its new priority in its group; a delayed job keeps its due time and starts in the new lane.
-- Running and finished jobs keep their priority (it no longer matters): refused.
--
-- A lean job (job.rs `lean_id`: its lane entry alone, no hash) is given its record first,
-- from its entry, and is then changed as any other (its record holds the new data; a new
-- priority moves it to an entry of its new lane, as any job).
--
-- KEYS: 1 job hash, 2 meta, 3 lanes, 4 events, 5 new lane stream, 6 the lane stream a lean
--       job's id names (for other ids, any lane of the queue). The lane the job waits in is
--       the one its record names (see `old_lane` below), a key of the same slot.
-- ARGV: 1 id, 2 what ('data' | 'priority'), 3 new priority ('' for data), 4 group,
--       5 events maxlen, then for data the new `data` field/value pairs, cut into pieces by
--       the caller (job.rs `push_long`)
-- Returns: 'ok', or 'missing', or 'active' / the state for a refused priority change
local job, meta, lanes, events, new_lane = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, what, value, group, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
-- a lean job without a record gets one first, from its entry, so the rest reads it as any
-- other; a finished one (its entry acknowledged) is no job any more and gets none: 'missing'
local lean_prio, lean_sid = lean_place(id)
local job_prefix = string.sub(job, 1, #job - #id)
if lean_prio and KEYS[6] == string.sub(job_prefix, 1, -3) .. 'ready:' .. lean_prio then
  lean_record(job_prefix, job, id, KEYS[6], lean_prio, lean_sid, nil, group)
end
local f = redis.call('HMGET', job, 'state', 'sid', 'ln', 'grp', 'prio')
local state, sid = job_state(f[1], f[2]), f[2]
local G = f[4] and group_keys(job_prefix)
-- The lane its entry is in, as its record says (`ln`: the front or the group lane; else its
-- priority's), never the lane of the priority the caller read before this call, which
-- another change may have moved the job from since (two operators at once). Looked for
-- there, a running job was not seen running (moved, it ran twice), and the entry of a
-- waiting one was left behind: two undelivered entries counted once in `waiting`, whose
-- claims took the counter below zero.
local old_lane = string.sub(job_prefix, 1, -3) .. 'ready:' .. lane_name(f[3], f[5])
if not state then return 'missing' end
if what == 'data' then
  drop_pieces(job, 'data')
  hset_list(job, ARGV, 6, #ARGV)
  emit(events, maxlen, 'event', 'updated', 'ids', id)
  return 'ok'
end
if state ~= 'waiting' and state ~= 'delayed' then return state end
if state == 'waiting' and valid_sid(sid) and pending_entry(old_lane, group, sid) then
  return 'active'
end
if G then
  -- a grouped job takes its new priority in its group, keeping its place among the jobs
  -- of that priority by add order (and its group its turn)
  local at = state == 'waiting' and sid == IN_GROUP and redis.call('ZSCORE', G.q .. f[4], id)
  if at then
    at = tonumber(at)
    local seq = at - math.floor(at / PRIO_SPAN) * PRIO_SPAN
    redis.call('ZADD', G.q .. f[4], 'XX', -tonumber(value) * PRIO_SPAN + seq, id)
  end
else
  open_lane(meta, lanes, new_lane, value, group)
  if state == 'waiting' and sid then
    redis.call('XDEL', old_lane, sid)
    set_waiting(job, redis.call('XADD', new_lane, '*', 'i', id))
    -- (a lean job leaves its entry: no longer one of the lean jobs with a record)
    if lean_prio then on_index('SREM', lean_records_key(job_prefix), id) end
  end
end
if value == '0' then redis.call('HDEL', job, 'prio') else redis.call('HSET', job, 'prio', value) end
emit(events, maxlen, 'event', 'updated', 'ids', id)
return 'ok'
