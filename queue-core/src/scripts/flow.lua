-- Helpers of the flow scripts (flow_stage, flow_commit, settle), prepended after the
-- prelude. They work on one queue whose keys come in this order:
--
-- KEYS: 1 meta, 2 lanes, 3 delayed, 4 marker, 5 events, 6 waiting children, 7 staged,
--       8 failed, 9 per-minute failed list, 10 outbox
-- ARGV: 1 the queue's base ('{prefix:queue}'), 2 group, 3 events maxlen
--
-- A flow job's hash has, besides a job's fields: `par` ('<queue>/<id>' of its parent),
-- `stg` ('1' while its flow's add has not committed it), and for a parent `kp` (children
-- not finished yet), `ocf` ('i' when a failed child is ignored), `dly` (its delay, counted
-- from its release) and `kf` (the failure of a child that fails it, met while staged).
-- Stored parents and staged jobs have `state` 'waiting_children' and no lane entry.

local Q = {
  meta = KEYS[1], lanes = KEYS[2], delayed = KEYS[3], marker = KEYS[4], events = KEYS[5],
  wc = KEYS[6], staged = KEYS[7], failed = KEYS[8], per_minute = KEYS[9], outbox = KEYS[10],
  base = ARGV[1], group = ARGV[2], maxlen = ARGV[3],
}
Q.job_prefix = Q.base .. ':j:'

-- How long a waiting parent goes before a worker looks up its children itself, in case a
-- notification was lost (flow/reconcile.rs), in ms.
local RECHECK_MS = 60000

-- What one call did, counted and announced once at its end (`finish`): jobs made waiting
-- or delayed, the earliest due time, parents failed; and the lanes it knows exist (a
-- commit of 1,000 jobs checks their lane once, not 1,000 times).
local done = {waiting = {}, delayed = {}, failed = {}, first_due = nil, wrote = 0, lanes = {}}

-- Makes flow job `id` (hash `job`) runnable once its children have finished: waiting in
-- its priority lane (or its group), or delayed by its `dly` from now. Its flow fields go (`stg`, `kf`,
-- `dly`); `kp` stays, for the record.
local function release(job, id, prio, dly, now)
  local d = tonumber(dly or '0') or 0
  if d > 0 then
    local due = now + d
    redis.call('HSET', job, 'state', 'delayed', 'due', ms_text(due))
    redis.call('HDEL', job, 'stg', 'kf', 'dly')
    redis.call('ZADD', Q.delayed, due, id)
    if not done.first_due or due < done.first_due then done.first_due = due end
    done.delayed[#done.delayed + 1] = id
    return
  end
  local p = prio or '0'
  if not valid_priority(p) then
    fail_corrupt(job, id, 'field prio is ' .. quoted(p) .. ', not a priority from -1000 to 1000',
      Q.failed, now)
    emit(Q.events, Q.maxlen, 'event', 'failed', 'ids', id)
    done.failed[#done.failed + 1] = id
    return
  end
  local grp = redis.call('HGET', job, 'grp')
  if grp then
    group_wait(group_keys(Q.base .. ':j:'), job, id, p, grp, false, 'stg', 'kf', 'dly')
    done.waiting[#done.waiting + 1] = id
    return
  end
  local lane = Q.base .. ':ready:' .. p
  if not done.lanes[p] then
    open_lane(Q.meta, Q.lanes, lane, p, Q.group)
    done.lanes[p] = true
  end
  set_waiting(job, redis.call('XADD', lane, '*', 'i', id), 'stg', 'kf', 'dly')
  done.waiting[#done.waiting + 1] = id
end

-- Fails flow parent `id` without running it, for `reason` (a child failed); its own
-- parent `par` (if any) is told.
local function fail_parent(job, id, reason, par, now)
  redis.call('HDEL', job, 'stg', 'kf', 'dly')
  fail_unrun(job, id, reason, Q.failed, now)
  emit(Q.events, Q.maxlen, 'event', 'failed', 'ids', id, 'error', reason)
  done.failed[#done.failed + 1] = false
  if par then
    notify_parent(Q.outbox, id, par, 'f', reason)
    done.wrote = 1
  end
end

-- What a parent whose children changed does next: fail (a child failed, `kf`), keep
-- waiting (children left: in the waiting-children set, looked at again in RECHECK_MS), or
-- run. `f` is what flow_fields read; `waiting` whether it is in the waiting-children set.
local function parent_next(job, id, f, now, waiting)
  -- f: state, stg, kp, ocf, prio, dly, par, kf
  if f[8] then
    if waiting then redis.pcall('ZREM', Q.wc, id) end
    return fail_parent(job, id, f[8], f[7], now)
  end
  if (tonumber(f[3]) or 0) > 0 then
    if not waiting then redis.pcall('ZADD', Q.wc, now + RECHECK_MS, id) end
    return
  end
  if waiting then redis.pcall('ZREM', Q.wc, id) end
  release(job, id, f[5], f[6], now)
end

-- Counts and announces what the call did (see `done`); returns 1 when it wrote to the
-- outbox (a failed parent told its own parent), else 0.
local function finish(now)
  if #done.waiting > 0 then
    hincr(Q.meta, 'waiting', #done.waiting)
    emit_ids(Q.events, Q.maxlen, 'waiting', done.waiting)
    wake(Q.marker, 0)
  end
  if #done.delayed > 0 then
    emit_ids(Q.events, Q.maxlen, 'delayed', done.delayed)
    wake(Q.marker, done.first_due)
  end
  if #done.failed > 0 then
    hincr(Q.meta, 'failed_total', #done.failed)
    bump_minute(Q.meta, Q.per_minute, 'f', now, #done.failed)
  end
  return done.wrote
end

-- The fields parent_next reads; nil when the job's key is not a hash (a corrupt record,
-- which must never fail a call that settles other parents too).
local function flow_fields(job)
  local f = redis.pcall('HMGET', job, 'state', 'stg', 'kp', 'ocf', 'prio', 'dly', 'par', 'kf')
  if type(f) ~= 'table' or f.err then return nil end
  return f
end
