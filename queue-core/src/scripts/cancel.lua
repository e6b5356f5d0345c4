-- cancel: an operator stops one job. A job that is not running — waiting (in its lane or its
-- group; paused too), delayed (a retry pending as well) or a flow parent waiting for its
-- children — becomes `cancelled` at once, out of every set that held it. A running job
-- (its lane entry pending) gets a cancel request for its attempt: its `cxl` field (the
-- attempt's entry id) and a member `<entry id> <job id>` of the queue's cancel requests,
-- which every worker holding jobs of the queue looks up for the attempts it holds; the worker
-- running it fires the handler's token, and the attempt ends `cancelled` (fail_or_retry),
-- or, should the worker die first, when it is reclaimed (reclaim, release). A finished job
-- (completed, failed, cancelled) is left as it is.
--
-- A lean job (job.rs `lean_id`: its lane entry alone, no hash) is given its record first,
-- from its entry, and is then cancelled as any other.
--
-- A cancelled flow child counts as finished for its parent (outbox, 'x'); the children of
-- a cancelled parent are cancelled by the caller, one call each (they may live in other
-- queues, so in other slots of a cluster).
--
-- KEYS: 1 meta, 2 delayed, 3 cancelled, 4 waiting children, 5 events, 6 outbox,
--       7 cancel requests, 8 .. lane streams
-- ARGV: 1 group, 2 events maxlen, 3 job key prefix, 4 lanes version, 5 keep count (-1
--       none), 6 keep age ms (0 none), 7 trim budget, 8 age past which a request is stale
--       (its attempt ended without answering it: the job completed) ms, 9 id, 10 L,
--       11 .. 10+L lane priorities
-- Returns: {'lanes', version} when stale, {'none'} when there is no such job, {'corrupt',
--          why} when its key is not a hash (a corrupt record: removing it is the way out),
--          {'staged'}
--          for a flow job whose add has not finished, {'finished', state}, {'requested'}
--          for a running job, else {'cancelled', 1 if it was a flow parent waiting for its
--          children (the caller cancels them), else 0}
local meta, delayed, cancelled, waiting_children = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local events, outbox, requests = KEYS[5], KEYS[6], KEYS[7]
local group, maxlen, job_prefix = ARGV[1], ARGV[2], ARGV[3]
local keep, age, budget = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local stale_ms, id, L = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local ver = redis.call('HGET', meta, 'lanes_ver') or '0'
if ver ~= ARGV[4] then return {'lanes', ver} end
local lane_of = {}
for i = 1, L do lane_of[ARGV[10 + i]] = 7 + i end


local job = job_prefix .. id
-- a lean job without a record (its lane entry alone) gets one first, from its entry, so
-- the rest reads it as any other job (a running one needs it for its `cxl`); a finished
-- one (its entry acknowledged) is no job any more and gets none: 'none'
local lean_prio, lean_sid = lean_place(id)
if lean_prio and lane_of[lean_prio] then
  lean_record(job_prefix, job, id, KEYS[lane_of[lean_prio]], lean_prio, lean_sid, nil, group)
end
local f, unreadable = job_fields(job, {'state', 'sid', 'prio', 'ln', 'par', 'grp', 'stg'})
if not f then return {'corrupt', unreadable} end
local state, sid = job_state(f[1], f[2]), f[2]
if not state then return {'none'} end
if f[7] then return {'staged'} end
if state == 'completed' or state == 'failed' or state == 'cancelled' then
  return {'finished', state}
end
local now = now_ms()
local lane = lane_of[lane_name(f[4], f[3])]
local lane_key = lane and KEYS[lane]
local place = waiting_place(state, sid, f[6], lane_key, group)
if place == 'running' then
  -- running: the worker holding it stops it
  redis.call('HSET', job, 'cxl', sid)
  -- (a requests key of the wrong type, a corrupt record, is started again)
  local member = request_member(sid, id)
  on_index('ZADD', requests, now, member)
  -- requests of attempts that completed anyway are never answered: a bounded few go here
  local stale = redis.call('ZRANGEBYSCORE', requests, '-inf', now - stale_ms, 'LIMIT', 0, 100)
  if #stale > 0 then redis.call('ZREM', requests, unpack(stale)) end
  emit(events, maxlen, 'event', 'cancelling', 'ids', id)
  return {'requested'}
end

local was_parent = 0
if leave_waiting(place, group_keys(job_prefix), id, sid, f[6], lane_key, group, {}) then
  hincr(meta, 'waiting', -1)
elseif state == 'delayed' then
  on_index('ZREM', delayed, id)
elseif state == 'waiting_children' then
  redis.call('ZREM', waiting_children, id)
  was_parent = 1
end
end_cancelled(job, id, {set = cancelled, requests = requests, outbox = outbox}, now, nil, f[5])
-- (a lean job that ended has no entry of its own any more: out of the set claims look up)
if lean_place(id) then on_index('SREM', lean_records_key(job_prefix), id) end
emit(events, maxlen, 'event', 'cancelled', 'ids', id)
trim_finished(cancelled, job_prefix, keep, age, now, budget)
return {'cancelled', was_parent}
