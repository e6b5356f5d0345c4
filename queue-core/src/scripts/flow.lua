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

-- Makes flow job `id` (hash `job`) runnable once its children have finished: waiting in
-- its priority lane, or delayed by its `dly` from now.
local function release(job, id, prio, dly, now)
  redis.call('ZREM', Q.wc, id)
  redis.call('HDEL', job, 'kf', 'stg', 'dly')
  local d = tonumber(dly or '0') or 0
  if d > 0 then
    local due = now + d
    redis.call('HSET', job, 'state', 'delayed', 'due', ms_text(due))
    redis.call('ZADD', Q.delayed, due, id)
    wake(Q.marker, due)
    emit(Q.events, Q.maxlen, 'event', 'delayed', 'ids', id)
    return
  end
  local p = prio or '0'
  if not valid_priority(p) then
    fail_corrupt(job, id, 'field prio is ' .. quoted(p) .. ', not a priority from -1000 to 1000',
      Q.failed, now)
    hincr(Q.meta, 'failed_total', 1)
    emit(Q.events, Q.maxlen, 'event', 'failed', 'ids', id)
    return
  end
  local lane = Q.base .. ':ready:' .. p
  if not redis.call('ZSCORE', Q.lanes, p) then
    pcall(redis.call, 'XGROUP', 'CREATE', lane, Q.group, '0', 'MKSTREAM')
    redis.call('ZADD', Q.lanes, p, p)
    hincr(Q.meta, 'lanes_ver', 1)
  end
  set_waiting(job, redis.call('XADD', lane, '*', 'i', id))
  hincr(Q.meta, 'waiting', 1)
  wake(Q.marker, 0)
  emit(Q.events, Q.maxlen, 'event', 'waiting', 'ids', id)
end

-- Fails flow parent `id` without running it, for `reason` (a child failed); its own
-- parent `par` (if any) is told. Returns 1 when it wrote to the outbox, else 0.
local function fail_parent(job, id, reason, par, now)
  redis.call('ZREM', Q.wc, id)
  redis.call('HDEL', job, 'kf', 'stg', 'dly')
  fail_unrun(job, id, reason, Q.failed, now)
  hincr(Q.meta, 'failed_total', 1)
  bump_minute(Q.meta, Q.per_minute, 'f', now, 1)
  emit(Q.events, Q.maxlen, 'event', 'failed', 'ids', id, 'error', reason)
  if par then
    notify_parent(Q.outbox, id, par, 'f', reason)
    return 1
  end
  return 0
end

-- What a parent waiting for its children does next: fail (a child failed, `kf`), keep
-- waiting (children left), or run. Returns 1 when it wrote to the outbox, else 0.
local function parent_next(job, id, f, now)
  -- f: state, stg, kp, ocf, prio, dly, par, kf
  if f[8] then return fail_parent(job, id, f[8], f[7], now) end
  if (tonumber(f[3]) or 0) > 0 then
    redis.call('ZADD', Q.wc, now + RECHECK_MS, id)
    return 0
  end
  release(job, id, f[5], f[6], now)
  return 0
end

-- The fields parent_next reads.
local function flow_fields(job)
  return redis.call('HMGET', job, 'state', 'stg', 'kp', 'ocf', 'prio', 'dly', 'par', 'kf')
end
