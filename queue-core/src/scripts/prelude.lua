-- Helpers shared by every jobq script (prepended to each at build time).

-- Milliseconds since the epoch by the Redis server's clock, so every process agrees on "now".
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The same clock rounded up: a due time computed from it is never before the moment the
-- job was added plus its delay (a floored clock could start a job up to 1 ms early).
local function now_ms_ceil()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
end

-- A time in ms as the string Redis stores. Lua formats a number argument of redis.call with
-- printf on every call; scripts writing the same time for each job of a batch format it once.
local function ms_text(ms)
  return string.format('%d', ms)
end

-- Long values are stored in pieces. A hash whose values all fit in 64 bytes stays a compact
-- listpack in Redis (hash-max-listpack-value); one longer value turns the whole job hash
-- into a hashtable, about twice the memory. So `data` and `opts` longer than 64 bytes are
-- kept as `f`, `f:2` … `f:n` plus `f:n` = n (cut at UTF-8 character boundaries, so every
-- piece is valid text). The client cuts them (job.rs `push_long`) and scripts store the
-- field/value pairs as they come; the readers are below and in job.rs.

-- Most values passed to one command from a list: Lua's unpack fails beyond its C stack
-- (about 8,000 values), which a value of a few hundred kilobytes in pieces would exceed.
-- Even, so a slice of field/value pairs never splits a pair.
local SLICE = 1000

-- The whole value of `field` of hash `job`, given its first piece and its `field:n` (false
-- when stored whole) and any further pieces already read (`more`, in order from piece 2).
local function long_value(job, field, first, n, more)
  n = tonumber(n)
  if not n or not first then return first end
  -- (the usual long value, two pieces both in hand: no tables to build)
  if n == 2 and more[1] then return first .. more[1] end
  local parts = {first}
  local missing = {}
  for k = 2, n do
    local v = more[k - 1]
    if v then parts[k] = v else missing[#missing + 1] = k end
  end
  for i = 1, #missing, SLICE do
    local names = {}
    for s = i, math.min(i + SLICE - 1, #missing) do names[#names + 1] = field .. ':' .. missing[s] end
    local got = redis.call('HMGET', job, unpack(names))
    for s = 1, #names do parts[missing[i + s - 1]] = got[s] or '' end
  end
  return table.concat(parts)
end

-- Values stored in up to this many 64-byte pieces (4 KiB) are read by the claim itself;
-- longer ones (in 64 KiB pieces past the first: job.rs `pieces`) are read by the worker
-- (move_to_active's `read:` note), so a claim of 500 jobs at the size cap never reads
-- 500 MiB in one call.
local INLINE_PIECES = 64

-- Most fields a job's hash has: a job at the largest caps (64 MiB of data and of options,
-- each in 64 KiB pieces) has about 2,100. A hash of more is a corrupt record, whose whole
-- read could block Redis for as long as it likes: readers of whole jobs leave it unread.
local MOST_JOB_FIELDS = 4096

-- A stored value for an error message: quoted with Lua's escapes (no raw control
-- characters reach a log), at most 40 bytes of it.
local function quoted(v)
  if v == nil or v == false then return 'missing' end
  v = tostring(v)
  if #v > 40 then return string.format('%q', string.sub(v, 1, 40)) .. '...' end
  return string.format('%q', v)
end

-- Whether `p` is a stored priority: an integer from -1000 to 1000.
local function valid_priority(p)
  if not string.match(p, '^%-?%d+$') then return false end
  local n = tonumber(p)
  return n >= -1000 and n <= 1000
end

-- The job id of a lane entry's fields ({'i', id}); nil for anything else.
local function entry_id(fields)
  if type(fields) == 'table' and fields[1] == 'i' and type(fields[2]) == 'string' then
    return fields[2]
  end
  return nil
end

-- Checks a long value of a job before it is read: `first` is its first piece (or the whole
-- value), `n` its `field:n`, `more` the pieces from the second already read (in order; nil
-- where not read). Returns nil when it can be read, else 'bad:<reason>' naming the field:
-- missing data, a piece count that is not a number or that the hash cannot hold (a corrupt
-- count must never make a script loop), or a size over `cap` bytes.
local function check_value(job, field, first, n, cap, more)
  if not first then
    if field == 'data' then return 'bad:field data is missing' end
    return nil
  end
  if not n then
    if #first > cap then
      return 'bad:field ' .. field .. ' is ' .. #first .. ' bytes, over the cap of ' .. cap .. ' bytes'
    end
    return nil
  end
  local count = tonumber(n)
  if not count or count < 2 or count ~= math.floor(count) then
    return 'bad:field ' .. field .. ':n is ' .. quoted(n) .. ', not a piece count'
  end
  -- pieces hold at least 61 bytes (64 cut at a UTF-8 boundary), all but the last
  if (count - 1) * 61 > cap then
    return 'bad:field ' .. field .. ' is stored in ' .. count .. ' pieces (over ' ..
      ((count - 1) * 61) .. ' bytes), over the cap of ' .. cap .. ' bytes'
  end
  -- every piece read already: the hash holds them all, no need to count its fields
  -- (the usual long value, two or three pieces, costs no call here)
  local held = true
  for k = 2, count do
    if not more[k - 1] then
      held = false
      break
    end
  end
  if held then return nil end
  local fields = redis.call('HLEN', job)
  if count > fields then
    return 'bad:field ' .. field .. ':n is ' .. count .. ' but the job has only ' .. fields ..
      ' fields'
  end
  return nil
end

-- Runs `cmd` on `key`, one of a queue's keys that list jobs or carry word about them: its
-- indexes of jobs (delayed, completed, failed and cancelled sets, lane streams, the lanes
-- set, the set of lean records), its flow outbox, its cancel requests, its wake-up marker.
-- One of another type (a corrupt record) holds nothing of ours: it is deleted and `cmd`
-- runs on a new, empty one, so the queue goes on instead of failing every call that meets
-- the key. The repair sweep (repair.lua) puts back the jobs a lost index listed, from their
-- hashes; the flow safety net looks up the children a lost outbox spoke of. (A lane stream
-- made again gets its consumer group from the next claim. A lean job whose record a lost
-- set of lean records named is read from its entry again: kept, its outcome keeps the
-- record's log and progress; removed on completion, its record is left behind.) Any other
-- error fails the call, deleting nothing.
local function on_index(cmd, key, ...)
  local r = redis.pcall(cmd, key, ...)
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'WRONGTYPE', 1, true) then error(r) end
    redis.call('DEL', key)
    r = redis.call(cmd, key, ...)
  end
  return r
end

-- Fails job `id` (hash `job`) for good without running it (again), with error `err`; it
-- leaves no live lane entry (`sid`), so no worker still running it records an outcome. The
-- caller counts it (failed_total, per-minute list, event).
local function fail_unrun(job, id, err, failed, now)
  -- (a key that is not a hash, a corrupt record, cannot take the outcome: it is only
  -- listed among the failed, where it shows as unreadable)
  if type(redis.pcall('HSET', job, 'state', 'failed', 'finished', now, 'error', err,
      'stack', '')) == 'number' then
    redis.call('HDEL', job, 'sid')
  end
  on_index('ZADD', failed, now, id)
end

-- Why `key` cannot be read as a `want` (a corrupt record): 'is a <its type>, not a <want>'.
local function wrong_type(key, want)
  return 'is a ' .. redis.call('TYPE', key)['ok'] .. ', not a ' .. want
end

-- The reply of HMGET of `fields` of job hash `job`, or nil (with the reason) when the key
-- is not a hash (a corrupt record): the caller fails that job alone.
local function job_fields(job, fields)
  local f = redis.pcall('HMGET', job, unpack(fields))
  if f.err then return nil, 'its record ' .. wrong_type(job, 'hash') end
  return f
end

-- Fails a job whose stored fields are corrupt, with a reason naming the job and the field.
local function fail_corrupt(job, id, reason, failed, now)
  fail_unrun(job, id, 'job ' .. id .. ' is corrupt: ' .. reason, failed, now)
end

-- Deletes the extra pieces of `field` of hash `job` (before it is written again).
local function drop_pieces(job, field)
  local n = tonumber(redis.call('HGET', job, field .. ':n'))
  if not n then return end
  -- a corrupt count (3000000, inf, nan) never drives the loop: no piece lies past the
  -- number of fields the hash holds
  local fields = redis.call('HLEN', job)
  if n ~= n or n > fields then n = fields end
  local names = {field .. ':n'}
  for k = 2, n do names[#names + 1] = field .. ':' .. k end
  for i = 1, #names, SLICE do
    redis.call('HDEL', job, unpack(names, i, math.min(i + SLICE - 1, #names)))
  end
end

-- HSET of `job` with the field/value pairs list[first .. last], in slices of SLICE.
local function hset_list(job, list, first, last)
  for s = first, last, SLICE do
    redis.call('HSET', job, unpack(list, s, math.min(s + SLICE - 1, last)))
  end
end

-- Adds `n` to the counter `field` of hash `key` (a queue's meta, a job's `stalls`). A
-- counter that is not an integer any more (a corrupt record) starts again from `n`: one bad
-- value must never make every call of a queue fail (and a failed claim leave its jobs to be
-- charged a stall).
local function hincr(key, field, n)
  local r = redis.pcall('HINCRBY', key, field, n)
  if type(r) == 'number' then return r end
  redis.call('HSET', key, field, n)
  return n
end

-- Append an event to the queue's event stream, trimmed to about `maxlen` entries.
-- Every event has `event` and `ids` (space-separated job ids: one entry per batch, not per
-- job, keeps the stream cheap on the hot path).
local function emit(events, maxlen, ...)
  -- events are for watchers: an events key that is not a stream (a corrupt record) loses
  -- them, never the transition they describe
  redis.pcall('XADD', events, 'MAXLEN', '~', maxlen, '*', ...)
end

-- Emit `name` for a list of job ids, at most EVENT_IDS_MAX ids per entry: the stream is
-- capped by entries, so a bounded entry size keeps its memory bounded whatever the batch size.
local EVENT_IDS_MAX = 20
local function emit_ids(events, maxlen, name, ids)
  for i = 1, #ids, EVENT_IDS_MAX do
    emit(events, maxlen, 'event', name, 'ids',
      table.concat(ids, ' ', i, math.min(i + EVENT_IDS_MAX - 1, #ids)))
  end
end

-- Emit `name` for the lean jobs (prelude *Lean jobs*) of the lane of priority `prio` whose
-- entries are `sids`: their ids are made of the two (events.rs reads `lean` so), so a batch
-- builds no id. At most EVENT_IDS_MAX per entry, as emit_ids.
local function emit_lean(events, maxlen, name, prio, sids)
  for i = 1, #sids, EVENT_IDS_MAX do
    emit(events, maxlen, 'event', name, 'lean', prio, 'ids',
      table.concat(sids, ' ', i, math.min(i + EVENT_IDS_MAX - 1, #sids)))
  end
end

-- Whether `s` (a job's stored `sid`) is a stream entry id, "<ms>-<seq>": anything else is a
-- corrupt value that must never reach a stream command (which would fail the whole call).
local function valid_sid(s)
  return type(s) == 'string' and string.match(s, '^%d+%-%d+$') ~= nil
end

-- Whether entry `sid` of stream `key` is pending in `group` (false when the stream or its
-- group is gone).
local function pending_entry(key, group, sid)
  local p = redis.pcall('XPENDING', key, group, sid, sid, 1)
  return type(p) == 'table' and not p.err and #p > 0
end

-- Whether stream id `a` is greater than `b` (ids are "<ms>-<seq>"; false for anything else).
local function id_gt(a, b)
  local a1, a2 = string.match(a, '^(%d+)-(%d+)$')
  local b1, b2 = string.match(b, '^(%d+)-(%d+)$')
  if not (a1 and b1) then return false end
  a1, a2, b1, b2 = tonumber(a1), tonumber(a2), tonumber(b1), tonumber(b2)
  return a1 > b1 or (a1 == b1 and a2 > b2)
end

-- The id of the last entry the consumer group `group` of stream `key` delivered.
local function last_delivered(key, group)
  local groups = redis.pcall('XINFO', 'GROUPS', key)
  -- no stream (deleted by hand): nothing was delivered from it
  if type(groups) ~= 'table' or groups.err then return '0-0' end
  for _, g in ipairs(groups) do
    local name, last
    for f = 1, #g, 2 do
      if g[f] == 'name' then name = g[f + 1] elseif g[f] == 'last-delivered-id' then last = g[f + 1] end
    end
    if name == group then return last end
  end
  return '0-0'
end

-- How many entries of lane `key` its consumer group `group` has not delivered yet, counted
-- up to `cap` + 1 (more than `cap`: at least that many). Counted, not taken from XINFO's
-- `lag`, which Redis 7.0 keeps too high once an undelivered entry was deleted (a removal,
-- a re-prioritised or debounced job). An empty lane costs one XLEN.
local function undelivered(key, group, cap)
  local n = redis.pcall('XLEN', key)
  if type(n) ~= 'number' or n == 0 then return 0 end
  local e = redis.call('XRANGE', key, '(' .. last_delivered(key, group), '+', 'COUNT', cap + 1)
  return #e
end

-- Acknowledges a batch's entries, one XACK per lane; `by_lane` maps a lane's KEYS index to
-- entry ids. Returns true when every entry was still pending, i.e. still this worker's (the
-- usual case): reclaim never hands an entry to another worker, it acknowledges it and gives
-- the job a new entry (and `sid`), so a pending entry belongs to the worker that claimed it.
local function ack_all(by_lane, group)
  local all = true
  for key_index, ids in pairs(by_lane) do
    local n = 0
    for i = 1, #ids, 500 do
      n = n + on_index('XACK', KEYS[key_index], group, unpack(ids, i, math.min(i + 499, #ids)))
    end
    if n < #ids then all = false end
  end
  return all
end

-- A waiting job's hash has no `state` field: waiting (or active: its entry is pending in its
-- lane's group) is the state of most stored jobs, and leaving it out keeps a queued job's
-- hash in a smaller allocation. Every other state is written. The job's state from its
-- `state` and `sid` fields (false, false: no such job; a waiting job always has `sid`).
local function job_state(state, sid)
  if state then return state end
  if sid then return 'waiting' end
  return nil
end

-- Makes a stored job waiting on lane entry `sid` (the entry is added by the caller).
-- (in its own priority lane: it leaves the front lane, see below)
local function set_waiting(job, sid, ...)
  redis.call('HSET', job, 'sid', sid)
  redis.call('HDEL', job, 'state', 'ln', ...)
end

-- Creates lane stream `key` of priority `prio` unless the lanes set has it: its group, and
-- its place in the lanes set with a new lanes version (fetchers then read it).
-- The first lane of a new queue marks it as one whose logs are tracked (`lt`, delete_jobs):
-- new, when it has no lanes version, no lane and no finished or delayed job (a log is
-- added only while a job runs, so a job with one is in a lane or one of those sets). A
-- queue that lost its meta, or made by an earlier version, is never marked.
local function open_lane(meta, lanes, key, prio, group)
  if on_index('ZSCORE', lanes, prio) then return end
  local new = redis.call('HEXISTS', meta, 'lanes_ver') == 0
  if new then
    local base = string.sub(meta, 1, -5)
    new = redis.call('EXISTS', lanes, base .. 'completed', base .. 'failed',
      base .. 'cancelled', base .. 'delayed') == 0
  end
  -- the group may already exist if only the lanes set was lost; that is fine
  pcall(redis.call, 'XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
  on_index('ZADD', lanes, prio, prio)
  hincr(meta, 'lanes_ver', 1)
  if new then redis.call('HSET', meta, 'lt', '1') end
end

-- The front lane (keys.rs FRONT_LANE): reclaimed jobs wait there, ahead of every priority
-- lane. A job in it records the lane in its `ln` field; its `prio` stays its own.
local FRONT_LANE = '1001'

-- Creates the front lane on first use: its group, and its place in the lanes set (fetchers
-- then see it). `ready` is whether it exists already (its score in the lanes set); returns
-- true, for the caller to keep as `ready`.
local function open_front(meta, lanes, front, group, ready)
  if ready then return true end
  open_lane(meta, lanes, front, FRONT_LANE, group)
  return true
end

-- Puts job `id` (hash `job`) back to wait at the end of the front lane.
local function wait_in_front(job, id, front)
  local sid = redis.call('XADD', front, '*', 'i', id)
  redis.call('HSET', job, 'sid', sid, 'ln', FRONT_LANE)
  redis.call('HDEL', job, 'state')
end

-- The lane a waiting job's entry is in, from its `ln` and `prio` fields.
local function lane_name(ln, prio)
  return ln or prio or '0'
end

-- Whether this worker still owns the attempt of the job whose hash is `job`, read from lane
-- entry `sid`: 'owned' while the job still has `sid` as its live entry and is not yet
-- recorded; 'recorded' when this very attempt was recorded already (a batch sent again
-- because its reply was lost to a dropped connection); 'lost' when reclaim or the sweep
-- moved the job to a new entry, or it was removed. A worker records only what it owns.
local function ownership(job, sid)
  local f = redis.pcall('HMGET', job, 'state', 'sid')
  -- a key that is not a hash (a corrupt record) holds no attempt of anyone's
  if f.err then return 'lost' end
  if f[2] ~= sid then return 'lost' end
  if not f[1] then return 'owned' end
  return 'recorded'
end

-- How long the oldest pending entry of a lane may hold back trimming before acknowledged
-- entries behind it are deleted one by one instead (bounds a stream behind a long job).
local TRIM_HOLD_MS = 5000

-- Drop acknowledged entries from lanes. XACK alone never shrinks a stream; XDEL per entry is
-- costly (a scan inside the node), so trim whole nodes below the oldest entry still pending
-- (XTRIM MINID ~), which never drops a pending entry. Entries acknowledged behind a
-- long-pending one are deleted directly. `by_lane` maps a lane's KEYS index to the entry ids
-- just acknowledged there.
local function trim_acked(by_lane, group)
  for key_index, ids in pairs(by_lane) do
    local key = KEYS[key_index]
    local p = redis.pcall('XPENDING', key, group, '-', '+', 1)
    local oldest = not p.err and p[1]
    if p.err then
      -- (a lane without its group, deleted by hand or made again, holds nothing to trim)
    elseif not oldest then
      -- nothing pending: every entry up to the last delivered one is acknowledged, so trim
      -- exactly past it (the lane keeps only entries not yet delivered)
      local ms, seq = string.match(last_delivered(key, group), '(%d+)-(%d+)')
      redis.call('XTRIM', key, 'MINID', ms .. '-' .. string.format('%d', tonumber(seq) + 1))
    else
      redis.call('XTRIM', key, 'MINID', '~', oldest[1])
      if tonumber(oldest[3]) > TRIM_HOLD_MS then
        for i = 1, #ids, 500 do
          redis.call('XDEL', key, unpack(ids, i, math.min(i + 499, #ids)))
        end
      end
    end
  end
end

-- Count finished jobs per minute in a bounded list (newest first) plus the current bucket,
-- kept in the meta hash as fields `<tag>m` (minute) and `<tag>c` (count).
local function bump_minute(meta, list, tag, now, n)
  local minute = math.floor(now / 60000)
  local cur = tonumber(redis.call('HGET', meta, tag .. 'm') or '-1') or -1
  if cur == minute then
    hincr(meta, tag .. 'c', n)
    return
  end
  if cur >= 0 and cur < minute then
    redis.pcall('LPUSH', list, redis.call('HGET', meta, tag .. 'c') or '0')
    local gap = math.min(minute - cur - 1, 1440)
    for _ = 1, gap do redis.pcall('LPUSH', list, '0') end
    redis.pcall('LTRIM', list, 0, 1439)
  end
  redis.call('HSET', meta, tag .. 'm', minute, tag .. 'c', n)
end

-- Processing time of recorded attempts (start to recorded outcome, in ms), as a histogram in
-- the meta hash: 'pt<i>' counts attempts that took at most PT_BOUNDS[i] ms, not cumulative
-- ('pt15': longer than every bound), and 'pts' is their total ms; the count is the buckets'
-- sum. A batch costs one HINCRBY per bucket it touches plus one, whatever its size. The
-- bounds are processing.rs PROCESSING_BUCKETS_MS.
local PT_BOUNDS = {1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000, 60000, 300000}
local PT_N = #PT_BOUNDS
-- A longer time is a clock mix-up, not a job: capped so the sum stays an exact integer.
local PT_MAX_MS = 10000000000
local function observe_times(meta, times)
  local n = #times
  if n == 0 then return end
  local per_bucket, sum = {}, 0
  for j = 1, n do
    local ms = times[j]
    if ms < 0 then ms = 0 elseif ms > PT_MAX_MS then ms = PT_MAX_MS end
    sum = sum + ms
    local b = 1
    while b <= PT_N and ms > PT_BOUNDS[b] do b = b + 1 end
    per_bucket[b] = (per_bucket[b] or 0) + 1
  end
  for b, count in pairs(per_bucket) do hincr(meta, 'pt' .. b, count) end
  hincr(meta, 'pts', ms_text(sum))
end

-- The prefix of jobs' log lists: `<base>:logs:` beside `<base>:j:` (keys.rs job_logs).
local function logs_prefix(job_prefix)
  return string.sub(job_prefix, 1, -3) .. 'logs:'
end

-- A job's log list.
local function logs_key(job_prefix, id)
  return logs_prefix(job_prefix) .. id
end

-- The prefix of flow parents' children hashes, `<base>:kids:` beside `<base>:j:`; a hash
-- holds `<queue>/<id>` → the child's entry (keys.rs job_kids tells its form).
local function kids_prefix(job_prefix)
  return string.sub(job_prefix, 1, -3) .. 'kids:'
end

-- A flow parent's children hash.
local function kids_key(job_prefix, id)
  return kids_prefix(job_prefix) .. id
end

-- Tells the parent of flow child `id` (`par` = '<queue>/<id>') how it finished: `s` is
-- 'c' (completed, `v` its return value), 'f' (failed for good, `v` the reason), 'r'
-- (removed) or 'x' (cancelled). The parent's queue may live on another Cluster node, so the outcome goes to
-- this queue's outbox; a worker delivers it (flow/deliver.rs) and deletes the entry.
-- An outbox key that is not a stream (a corrupt record) holds no outcome and must never
-- stop the transition recording one: it is started again.
local function notify_parent(outbox, id, par, s, v)
  on_index('XADD', outbox, '*', 'c', id, 'p', par, 's', s, 'v', v)
end

-- The queue's outbox (keys.rs `outbox`), for scripts not given it in KEYS.
local function outbox_key(job_prefix)
  return string.sub(job_prefix, 1, -3) .. 'outbox'
end

-- A queue's cancelled set, cancel requests and outbox (keys.rs `cancelled`, `cancels`,
-- `outbox`), from its job key prefix, for the scripts that end attempts.
local function cancel_keys(job_prefix)
  local base = string.sub(job_prefix, 1, -3)
  return {set = base .. 'cancelled', requests = base .. 'cancels', outbox = outbox_key(job_prefix)}
end

-- The member of a queue's cancel requests that asks to stop the attempt of job `id` on
-- lane entry `sid`: keyed to the attempt, so a request left by an attempt that completed
-- anyway never matches a later job under the same id.
local function request_member(sid, id)
  return sid .. ' ' .. id
end

-- Ends job `id` (hash `job`) cancelled, at `now`: in the cancelled set `C.set`, the cancel
-- request of its attempt on entry `sid` (if any) answered, with no live lane entry, so no
-- worker still running it records an outcome, and its flow parent `par` ('<queue>/<id>';
-- nil or '' none) told through `C.outbox` (a cancelled child counts as finished). The
-- caller emits the event. A set of the wrong type (a corrupt record) is started again
-- rather than failing the transition.
local function end_cancelled(job, id, C, now, sid, par)
  redis.call('HSET', job, 'state', 'cancelled', 'finished', ms_text(now), 'error', 'cancelled')
  redis.call('HDEL', job, 'sid', 'ln', 'cxl', 'due')
  on_index('ZADD', C.set, now, id)
  if sid then redis.pcall('ZREM', C.requests, request_member(sid, id)) end
  if par and par ~= '' then notify_parent(C.outbox, id, par, 'x', '') end
end

-- Before jobs `ids` that never finished are deleted: tells the parents of those that are
-- flow children that they were removed (a removed child counts as finished). A key that is
-- not a hash (a corrupt record) has no parent to tell, and never stops the deletion.
local function notify_removed(job_prefix, outbox, ids)
  for _, id in ipairs(ids) do
    local par = redis.pcall('HGET', job_prefix .. id, 'par')
    if type(par) == 'string' then notify_parent(outbox, id, par, 'r', '') end
  end
end

-- Whether job `id` may be a flow parent (have a children hash): a lean job's id (`~…`,
-- lean_id; an add takes no id of that spelling) never is. Building a key name in a script
-- and looking up a key that is not there cost: skipping it made a kept lean job ~0.3 µs of
-- Redis CPU cheaper to process (~3 % under the default retention).
local function may_have_kids(id)
  return string.byte(id, 1) ~= 126
end

-- Delete a job's hash, logs and (a flow parent's) children; returns how many of those
-- existed. UNLINK: Redis frees what is large (a long log list) in the background, and a
-- job's big pieces (up to 64 KiB each) cost half what DEL does in the call.
local function delete_job(job_prefix, id)
  if not may_have_kids(id) then
    return redis.call('UNLINK', job_prefix .. id, logs_key(job_prefix, id))
  end
  return redis.call('UNLINK', job_prefix .. id, logs_key(job_prefix, id), kids_key(job_prefix, id))
end

-- Delete the hashes, logs and (of flow parents) children of many jobs: ids `list[first]`,
-- `list[first + step]` … up to `last`, in DEL calls of up to SLICE keys (one call per job
-- would cost more than the deletions themselves). Returns how many jobs were listed.
-- Log keys are left out when the queue has never had a log: its meta says its logs are
-- tracked (`lt`, set by a new queue's first lane, open_lane: an older queue may have logs
-- it never marked) and no log was ever added (`lg`, add_log). Building and unlinking a log
-- key that is not there cost ~0.4 µs a job, ~5 % of Redis's CPU under the default
-- retention.
local function delete_jobs(job_prefix, list, first, last, step)
  local m = redis.pcall('HMGET', string.sub(job_prefix, 1, -3) .. 'meta', 'lt', 'lg')
  local logs = (m.err or m[1] ~= '1' or m[2]) and logs_prefix(job_prefix)
  local kids = kids_prefix(job_prefix)
  local keys, n = {}, 0
  for i = first, last, step do
    local id = list[i]
    keys[#keys + 1] = job_prefix .. id
    if logs then keys[#keys + 1] = logs .. id end
    if may_have_kids(id) then keys[#keys + 1] = kids .. id end
    n = n + 1
    if #keys >= SLICE then
      redis.call('UNLINK', unpack(keys))
      keys = {}
    end
  end
  if #keys > 0 then redis.call('UNLINK', unpack(keys)) end
  return n
end

-- Keep a finished set within `count` jobs (-1 = no limit) and `age` ms (0 = no limit),
-- deleting at most `budget` jobs per call so one call never blocks Redis for long. A count
-- of 0 is the retention of jobs removed as they finish (never listed): it keeps no set
-- small, or one job removed on completion would delete every job others keep.
local function trim_finished(set, job_prefix, count, age, now, budget)
  local removed = 0
  if count > 0 then
    local excess = on_index('ZCARD', set) - count
    if excess > 0 then
      -- (a range then a removal by rank: cheaper than ZPOPMIN, which formats every score)
      local oldest = redis.call('ZRANGE', set, 0, math.min(excess, budget) - 1)
      redis.call('ZREMRANGEBYRANK', set, 0, #oldest - 1)
      removed = removed + delete_jobs(job_prefix, oldest, 1, #oldest, 1)
    end
  end
  if age > 0 and removed < budget then
    local old = on_index('ZRANGEBYSCORE', set, '-inf', now - age, 'LIMIT', 0, budget - removed)
    if #old > 0 then
      redis.call('ZREM', set, unpack(old))
      delete_jobs(job_prefix, old, 1, #old, 1)
    end
  end
end

-- Wake blocked workers: member 'm' of the marker set, scored by when there is work (0 = now).
local function wake(marker, at)
  -- (one of the wrong type holds nothing but this wake-up: made again rather than failing
  -- every add, resume and retry of the queue)
  on_index('ZADD', marker, 'LT', at, 'm')
end

-- Groups (keys.rs `group_*`, groups.rs). A grouped job waits in its group's queue, a sorted
-- set, with `grp` = its group and `sid` = IN_GROUP (no stream entry). The claim takes
-- groups in turn from the ring (a sorted set by turn) and gives each job it takes an entry
-- in the group lane, where it is pending like any other active job. Invariant: a group is
-- in the ring exactly while its queue is not empty and it is not parked (held back by a
-- limit, in the park). The waiting and active counts per group are sorted sets too.
local GROUP_LANE = '1002'
local IN_GROUP = 'g'
-- a job's score in its group's queue: -priority * PRIO_SPAN + sequence number (exact in a
-- double for priorities up to 1001, the front, and 2^42 sequence numbers)
local PRIO_SPAN = 4398046511104

-- The keys of a queue's groups, from its job key prefix (`{…}:j:`).
local function group_keys(job_prefix)
  local base = string.sub(job_prefix, 1, -3)
  return {meta = base .. 'meta', ring = base .. 'gring', park = base .. 'gpark',
    waiting = base .. 'gwait', active = base .. 'gact', limits = base .. 'glimits',
    q = base .. 'gq:', rate = base .. 'grl:', lane = base .. 'ready:' .. GROUP_LANE,
    marker = base .. 'marker'}
end

-- The groups' active counts were lost (their set deleted as corrupt): every group would
-- count 0 running and start a full quota beside the jobs it runs. Flagged in the queue's
-- meta (`gal`): claims start no grouped job until the counts are made again from the group
-- lane (group_lane_counts: by the claim, or the sweep's recount).
local function active_lost(G)
  redis.call('HSET', G.meta, 'gal', '1')
end

-- Most pending entries of the group lane a recount of the groups' active counts reads (~2
-- calls an entry).
local RECOUNT_MAX = 1000

-- The active counts the group lane's pending entries (for consumer group `group`) make,
-- group by group; nil when they cannot all be counted (more than RECOUNT_MAX, or an entry
-- whose job is gone).
local function group_lane_counts(G, group, job_prefix)
  local summary = redis.pcall('XPENDING', G.lane, group)
  if type(summary) ~= 'table' or summary.err then return {} end
  local n = tonumber(summary[1]) or 0
  if n == 0 then return {} end
  if n > RECOUNT_MAX then return nil end
  local by = {}
  for _, p in ipairs(redis.call('XPENDING', G.lane, group, '-', '+', n)) do
    local e = redis.call('XRANGE', G.lane, p[1], p[1])
    local id = e[1] and entry_id(e[1][2])
    local grp = id and redis.pcall('HGET', job_prefix .. id, 'grp')
    if type(grp) ~= 'string' then return nil end
    by[grp] = (by[grp] or 0) + 1
  end
  return by
end

-- Deletes any of a queue's group sets that is not a sorted set (a corrupt record), so no
-- group command fails for the whole queue: the sweep (repair_groups) rebuilds the ring and
-- the park from the waiting counts. The limits hash is only read (pcall), never deleted.
-- (The helpers below write the group sets through on_index, which does the same for the
-- set it meets: a transition never stops half-way at one, its earlier writes kept.)
-- Returns true when it deleted the active counts (flagged: active_lost).
local function group_keys_sane(G)
  local lost = false
  for _, k in ipairs({G.ring, G.park, G.waiting, G.active}) do
    local t = redis.call('TYPE', k)['ok']
    if t ~= 'zset' and t ~= 'none' then
      redis.call('DEL', k)
      if k == G.active then
        active_lost(G)
        lost = true
      end
    end
  end
  return lost
end

-- Gives group `grp` a turn after every group in the ring (none if it has one already).
local function ring_add(G, grp)
  local tail = on_index('ZRANGE', G.ring, -1, -1, 'WITHSCORES')
  on_index('ZADD', G.ring, 'NX', tail[2] and (tonumber(tail[2]) + 1) or 1, grp)
end

-- Takes group `grp` out of the park and, if it has waiting jobs, gives it its turn back.
-- Returns whether it was parked, and whether it got a turn.
local function group_unpark(G, grp)
  if on_index('ZREM', G.park, grp) == 0 then return false, false end
  if redis.call('EXISTS', G.q .. grp) == 0 then return true, false end
  ring_add(G, grp)
  return true, true
end

-- Puts job `id` (priority `prio`, its hash written already) in group `grp`'s queue
-- (`front`: ahead of the group's other jobs, a job given back or reclaimed), counted among
-- the groups' waiting jobs; the caller counts it in the queue's `waiting`.
local function group_enqueue(G, id, prio, grp, front)
  local p = front and 1001 or (tonumber(prio) or 0)
  local seq = redis.pcall('HINCRBY', G.meta, 'gseq', 1)
  if type(seq) ~= 'number' then
    -- a `gseq` that is not a whole number (a corrupt record) failed every grouped add half
    -- way, its job hash written: counting goes on from the clock's milliseconds, above any
    -- number a count of adds reaches (and below PRIO_SPAN), so the group's order holds
    seq = now_ms()
    redis.call('HSET', G.meta, 'gseq', seq)
  end
  on_index('ZADD', G.q .. grp, -p * PRIO_SPAN + seq, id)
  hincr(G.meta, 'gw', 1)
  -- a group that had waiting jobs is in the ring or parked already
  if tonumber(on_index('ZINCRBY', G.waiting, 1, grp)) == 1
      and not on_index('ZSCORE', G.park, grp) then
    ring_add(G, grp)
  end
end
-- Makes stored job `id` (hash `job`) wait in group `grp` (group_enqueue), clearing fields
-- `...` of its hash.
local function group_wait(G, job, id, prio, grp, front, ...)
  group_enqueue(G, id, prio, grp, front)
  redis.call('HSET', job, 'sid', IN_GROUP)
  redis.call('HDEL', job, 'state', 'ln', ...)
end

-- Takes waiting job `id` out of group `grp` (a removal); false if it was not there. The
-- caller uncounts it from the queue's `waiting`.
local function group_unwait(G, id, grp)
  if on_index('ZREM', G.q .. grp, id) == 0 then return false end
  hincr(G.meta, 'gw', -1)
  if tonumber(on_index('ZINCRBY', G.waiting, -1, grp)) <= 0 then
    on_index('ZREM', G.waiting, grp)
    on_index('ZREM', G.ring, grp)
  end
  return true
end

-- Where stored job `id` waits, from its `state`, `sid` and `grp` fields and its lane's
-- stream `lane_key` (nil when its lane is not among the caller's): 'running' (its lane
-- entry is pending in `group`: a worker holds it), 'group' (in its group's queue), 'lane'
-- (an entry of its lane), or nil (not waiting, or no entry to find).
local function waiting_place(state, sid, grp, lane_key, group)
  if state ~= 'waiting' then return nil end
  if grp and sid == IN_GROUP then return 'group' end
  if not (valid_sid(sid) and lane_key) then return nil end
  if pending_entry(lane_key, group, sid) then return 'running' end
  return 'lane'
end

-- Takes waiting job `id` out of its `place` (waiting_place: 'group' or 'lane'; anything
-- else is left alone). True when it was counted in the queue's `waiting` (a place in its
-- group, or a lane entry not delivered yet), for the caller to uncount. `last` caches the
-- lanes' last delivered entry ids over a batch.
local function leave_waiting(place, G, id, sid, grp, lane_key, group, last)
  if place == 'group' then return group_unwait(G, id, grp) end
  if place ~= 'lane' then return false end
  last[lane_key] = last[lane_key] or last_delivered(lane_key, group)
  return redis.call('XDEL', lane_key, sid) == 1 and id_gt(sid, last[lane_key])
end

-- `n` (default 1) of group `grp`'s active jobs ended (finished, failed, given back,
-- reclaimed). A group parked at its concurrency cap returns to the ring; returns true
-- then, for the caller to wake the workers.
local function group_done(G, grp, n)
  local left = redis.pcall('ZINCRBY', G.active, -(n or 1), grp)
  if type(left) == 'table' and left.err then
    -- the counts' set is not a sorted set (a corrupt record): gone, and flagged
    if not string.find(left.err, 'WRONGTYPE', 1, true) then error(left) end
    redis.call('DEL', G.active)
    active_lost(G)
  elseif tonumber(left) <= 0 then
    redis.call('ZREM', G.active, grp)
  end
  if on_index('ZSCORE', G.park, grp) == 'inf' then
    local _, turn = group_unpark(G, grp)
    return turn
  end
  return false
end

-- Counts one ended attempt of group `grp` ('' none) in `ended` (group → count), for
-- groups_done: a batch's outcomes free their groups' slots one write per group.
local function count_ended(ended, grp)
  if grp ~= '' then ended[grp] = (ended[grp] or 0) + 1 end
end

-- group_done for every group counted in `ended`; true if the workers must be woken.
local function groups_done(G, ended)
  local woken = false
  for grp, n in pairs(ended) do
    if group_done(G, grp, n) then woken = true end
  end
  return woken
end

-- Puts stored job `id` (hash `job`; the lane entry of its attempt deleted) back to wait
-- first: ahead in its group, whose slot its attempt frees, or else in the front lane (the
-- caller opens it). `fields` is the job's HMGET of 'sid', 'grp', 'prio'.
local function wait_again(G, job, id, front, fields)
  if fields[2] then
    group_done(G, fields[2])
    group_wait(G, job, id, fields[3], fields[2], true)
  else
    wait_in_front(job, id, front)
  end
end

-- Lean jobs (job.rs `lean_id`, the README's *Lean jobs*): a ready job added with none of
-- the options that need its record (no delay, given id, dedup, debounce, group or flow)
-- and small values is stored as its lane entry alone, without a hash: fields 'n' name,
-- 'd' data, then 'o' options and 't' trace context when it has them. Its id is its place,
-- '~<priority>.<entry id>': any reader finds it from the id alone. It waits while its
-- entry is undelivered and is active while the entry is pending. When anything needs its
-- record (a failed attempt, progress, a log, a reclaim, an operator's change), the hash is
-- made from the entry (lean_record) and the id joins the queue's set of lean jobs with a
-- record (`<base>:lr`), which claims and outcomes look up while it is not empty; from then
-- on the hash speaks for the job, as for any other. The record its completion keeps (its
-- first attempt's) leaves out what the id says: `ts`, its entry's time, and `att`, 1
-- (job.rs `JobInfo::from_hash` and search read them so).

-- The id of the lean job in entry `sid` of the lane of priority `prio`.
local function lean_id(prio, sid)
  return '~' .. prio .. '.' .. sid
end

-- The priority and entry id a lean job id names; nil for any other id. Only the spelling
-- jobq writes names one (no leading zeros, no '-0', a priority from -1000 to 1000): else
-- '~0.01-0' would name entry 1-0 too, and give its job a second record.
local function lean_place(id)
  local prio, sid = string.match(id, '^~(%-?%d+)%.(%d+%-%d+)$')
  if not prio or not valid_priority(prio) or prio == '-0' or string.match(prio, '^%-?0%d')
      or string.match(sid, '^0%d') or string.match(sid, '%-0%d') then
    return nil
  end
  return prio, sid
end

-- Whether a lane entry's fields are a lean job's ('n' first; an entry of a job with a
-- record holds 'i', its id).
local function is_lean_entry(fields)
  return type(fields) == 'table' and fields[1] == 'n'
end

-- The set of lean jobs with a record, from the job key prefix (`{…}:j:`).
local function lean_records_key(job_prefix)
  return string.sub(job_prefix, 1, -3) .. 'lr'
end

-- The pieces of text `v` as job.rs `pieces` cuts it (64-byte pieces at UTF-8 character
-- boundaries; lean values are at most 4 KiB, so never the 64 KiB ones), appended to `out`
-- as field/value pairs under `field`. A longer one (an entry not written by jobq, a corrupt
-- record) is kept whole: cutting it here would cost a step per 64 bytes.
local function push_pieces(out, field, v)
  if #v <= 64 or #v > 4096 then
    out[#out + 1] = field
    out[#out + 1] = v
    return
  end
  local n, at = 0, 1
  while at <= #v do
    local cut = math.min(at + 63, #v)
    -- (a continuation byte 10xxxxxx starts no character: cut before its character)
    while cut < #v and cut > at do
      local b = string.byte(v, cut + 1)
      if b < 128 or b >= 192 then break end
      cut = cut - 1
    end
    n = n + 1
    out[#out + 1] = n == 1 and field or (field .. ':' .. n)
    out[#out + 1] = string.sub(v, at, cut)
    at = cut + 1
  end
  out[#out + 1] = field .. ':n'
  out[#out + 1] = tostring(n)
end

-- A lean job's add time: the time (ms, as text) of its entry `sid`.
local function entry_time(sid)
  return string.match(sid, '^(%d+)')
end

-- The hash fields of the lean job in entry `sid` (lane of priority `prio`) with entry
-- fields `fields`, as add_job would have written them (its `ts` is its entry's time).
local function lean_fields(prio, sid, fields)
  local v = {}
  for i = 1, #fields - 1, 2 do v[fields[i]] = fields[i + 1] end
  local out = {'ts', entry_time(sid), 'sid', sid, 'name', v.n or ''}
  push_pieces(out, 'data', v.d or '')
  if v.o and v.o ~= '' then push_pieces(out, 'opts', v.o) end
  if prio ~= '0' then
    out[#out + 1] = 'prio'
    out[#out + 1] = prio
  end
  if v.t then
    out[#out + 1] = 'tp'
    out[#out + 1] = v.t
  end
  return out
end

-- The fields of entry `sid` of lane stream `lane` when they are a lean job's; nil when the
-- entry is gone, is another job's, or the lane is no stream (a corrupt record).
local function lean_entry(lane, sid)
  local e = redis.pcall('XRANGE', lane, sid, sid)
  local fields = type(e) == 'table' and not e.err and e[1] and e[1][2]
  if is_lean_entry(fields) then return fields end
  return nil
end

-- The hash fields of lean job `id` (lean_fields), read from its entry in lane stream
-- `lane`; nil when the entry is gone or is not a lean job's.
local function lean_entry_fields(lane, id)
  local prio, sid = lean_place(id)
  local fields = prio and lean_entry(lane, sid)
  return fields and lean_fields(prio, sid, fields)
end

-- Whether entry `sid` of lane `lane` is a live job's: not delivered yet (waiting) or
-- pending (active). An entry delivered and acknowledged is a finished job's, left until
-- the lane is trimmed.
local function live_entry(lane, group, sid)
  return pending_entry(lane, group, sid) or id_gt(sid, last_delivered(lane, group))
end

-- Gives lean job `id` (entry `sid` of lane stream `lane`, priority `prio`; its hash key
-- `job`) its record, from the entry: true when it has one now (made here or before),
-- false when it has no live entry (the job finished, or never was). `fields` is the
-- entry's, when the caller read it already; `group` is given when the entry may not be
-- live (an operator's call), nil when the caller holds it pending. A key that is not a
-- hash (a corrupt record) is left for the caller's checks.
local function lean_record(job_prefix, job, id, lane, prio, sid, fields, group)
  if redis.call('EXISTS', job) == 1 then return true end
  if group and not live_entry(lane, group, sid) then return false end
  fields = fields or lean_entry(lane, sid)
  if not is_lean_entry(fields) then return false end
  local list = lean_fields(prio, sid, fields)
  hset_list(job, list, 1, #list)
  on_index('SADD', lean_records_key(job_prefix), id)
  return true
end

-- The job id of entry `sid` (fields `fields`) of lane stream `key`, for a reclaim or a
-- give-back about to delete the entry: its `i`, or a lean job's id, the job given its
-- record from the entry first when it has none (it is run again from its record). nil for
-- an entry of neither kind.
local function entry_job_id(job_prefix, key, sid, fields)
  local id = entry_id(fields)
  if id or not is_lean_entry(fields) then return id end
  local prio = string.match(key, ':ready:(%-?%d+)$')
  -- (only priority lanes hold lean jobs)
  if not prio or not valid_priority(prio) then return nil end
  id = lean_id(prio, sid)
  local job = job_prefix .. id
  if redis.call('EXISTS', job) == 0 then
    -- (a set of lean records is not needed: the entry it names is gone)
    local list = lean_fields(prio, sid, fields)
    hset_list(job, list, 1, #list)
  end
  return id
end

-- In an outcome batch (complete, fail_or_retry): whether job `id`, a lean job without a
-- record when claimed, still has none. One given a record while it ran ends with that
-- record speaking for it: it joins `ended`, to leave the set of lean records.
local function lean_outcome(lean_set, lean_n, id, ended)
  if lean_n > 0 and redis.call('SISMEMBER', lean_set, id) == 1 then
    ended[#ended + 1] = id
    return false
  end
  return true
end

-- Whether the attempt of lean job `id` (entry `sid` of lane stream `lane`) is this worker's,
-- in a batch whose acknowledgements came up short (`again`: sent again, `pending`: its
-- entry was pending before): 'owned', 'recorded' (by the call that failed) or 'lost'
-- (taken from this worker: a reclaim or a give-back deletes the entry).
local function lean_ownership(lane, sid, again, pending)
  if again then return pending and 'owned' or 'recorded' end
  return #redis.call('XRANGE', lane, sid, sid) > 0 and 'owned' or 'lost'
end

-- The lean job named by id `id` whose hash key is `job`, given its record from its entry
-- when it has a live one (a script that writes to a job's record: progress, a log).
-- `lane` must be the lane stream the id names; `group` the lanes' consumer group.
local function lean_record_by_id(job, id, lane, group)
  local prio, sid = lean_place(id)
  local job_prefix = string.sub(job, 1, #job - #id)
  if prio and lane == string.sub(job_prefix, 1, -3) .. 'ready:' .. prio then
    lean_record(job_prefix, job, id, lane, prio, sid, nil, group)
  end
end

-- A lean job recorded by a batch whose acknowledgements came up short (complete,
-- fail_or_retry) may still have its entry undelivered: a claim lost with a failover (Redis
-- replicates asynchronously) leaves it waiting on the promoted replica while its worker
-- ran it. Its entry is deleted (and uncounted from `waiting`), or it would run again.
local function lean_entry_done(meta, lane, group, sid)
  if id_gt(sid, last_delivered(lane, group)) then hincr(meta, 'waiting', -1) end
  redis.call('XDEL', lane, sid)
end

-- Claims of jobs with a record, from their lane entries: move_to_active's read of a lane,
-- and claim_entries (the entries of a fast claim, claim_fast.lua, that are not lean jobs).
-- Every field a claim reads is checked (the README's guarantee 8): a job whose stored
-- fields are corrupt or over the size caps is still claimed, but comes back with a note
-- instead of its data ('bad:<reason>'), and the worker fails it alone; values stored in more
-- than INLINE_PIECES pieces, or past the call's budget of pieces, are left to the worker to
-- read (a 'read:' note).

-- The longest job name an add takes (queue.rs): a longer stored one is a corrupt record.
local NAME_MAX = 256
-- The fields a claim reads of each job, in this order: data up to 3 pieces (192 bytes)
-- comes in this one read.
local CLAIM_FIELDS = {'sid', 'name', 'data', 'opts', 'att', 'data:n', 'opts:n', 'data:2',
  'data:3', 'par', 'grp', 'state'}

-- Acknowledges and deletes entries `sids` of lane stream `key` (consumer group `group`): a
-- claim's orphans, read but no job's to run.
local function drop_orphans(key, group, sids)
  if #sids == 0 then return end
  redis.call('XACK', key, group, unpack(sids))
  redis.call('XDEL', key, unpack(sids))
end

-- Counts jobs a claim failed unrun (their records corrupt: fail_corrupt), `ids`, in the
-- queue's totals and the minute's count, and emits their event.
local function count_failed_unrun(meta, per_minute, events, maxlen, now, ids)
  if #ids == 0 then return end
  hincr(meta, 'failed_total', #ids)
  bump_minute(meta, per_minute, 'f', now, #ids)
  emit_ids(events, maxlen, 'failed', ids)
end

-- One call's claims of jobs with a record. `failed` is the queue's failed set, `now` the
-- call's clock, `lean_n` the size of its set of lean records; a job whose key is not a hash
-- is failed alone and joins `late_failed`. Returns the claims: `take` claims one, `started`
-- lists the ids claimed (for their event), `left_lean` the lean jobs given a record that
-- run from another entry now (to leave the set of lean records).
-- (Its constants are its own: move_to_active's main function, with the prelude's locals,
-- is at Lua's limit of 200 locals.)
local function stored_claims(job_prefix, failed, now, data_cap, opts_cap, lean_n, late_failed)
  local c = {started = {}, left_lean = {}}
  -- the states of a job whose lane entry is not its own to run
  local ENDED = {completed = true, failed = true, cancelled = true, delayed = true}
  -- no pieces in hand (opts: the claim reads only its first)
  local NO_PIECES = {}
  -- pieces of long values (past those that come with a job's fields) one call reads for all
  -- its jobs: past it, the worker reads the rest (a `read:` note), so a claim of 500 jobs of
  -- a few KiB each stays short (~3 µs a piece on a slow machine: 16,000 took ~57 ms)
  local inline_left = 2048
  -- `n` pieces of a value, taken out of the budget when it has them; else more than
  -- INLINE_PIECES, the count of a value left to the worker
  local function from_budget(n)
    if inline_left < n then return INLINE_PIECES + 1 end
    inline_left = inline_left - n
    return n
  end
  -- whether data in two pieces is within its cap by check_value's count (61 bytes a piece)
  local two_pieces_fit = 61 <= data_cap
  -- A claimed job's values, checked: its note ('' when all read, or `read:`/`bad:`, as
  -- move_to_active's header says), name, data, options and past attempts. `f` is its
  -- fields (CLAIM_FIELDS order), `bad_sid` a note already found for its `sid`.
  local function checked_values(job, f, bad_sid)
    local note, data, opts = '', '', ''
    -- the data pieces after the first that came with the job's fields
    local data_more = {f[8], f[9]}
    local att = tonumber(f[5] or '0')
    local dn, on = f[6], f[7]
    local name = f[2] or ''
    if name == '' then
      note = 'bad:field name is missing'
    elseif #name > NAME_MAX then
      -- (not sent back: the worker would carry it into the failure and its logs)
      note = 'bad:field name is ' .. #name .. ' bytes, over the ' .. NAME_MAX ..
        ' bytes a job name may have'
      name = ''
    elseif not att or att < 0 or att > 4294967294 or att ~= math.floor(att) then
      note = 'bad:field att is ' .. quoted(f[5]) .. ', not an attempt count'
      att = 0
    else
      note = bad_sid or check_value(job, 'data', f[3], dn, data_cap, data_more)
        or check_value(job, 'opts', f[4], on, opts_cap, NO_PIECES) or ''
    end
    if note == '' then
      -- (a piece count beside no value, a corrupt record, counts nothing: the value is
      -- empty, never read piece by piece)
      dn, on = tonumber(dn) or 1, f[4] and tonumber(on) or 1
      -- a value past 4 KiB is cut into 64 KiB pieces after its first three (job.rs
      -- `pieces`): few of them, but each too long for a claim of many jobs to read
      if dn > 3 and redis.call('HSTRLEN', job, 'data:4') > 64 then dn = INLINE_PIECES + 1 end
      if on > 3 and redis.call('HSTRLEN', job, 'opts:4') > 64 then on = INLINE_PIECES + 1 end
      -- (the pieces this call still reads, out of its budget)
      if dn > 3 and dn <= INLINE_PIECES then dn = from_budget(dn) end
      if on > 1 and on <= INLINE_PIECES then on = from_budget(on) end
      if dn > INLINE_PIECES or on > INLINE_PIECES then
        -- too long to read here: the worker reads it (a bounded call at a time)
        note = 'read:' .. (dn > INLINE_PIECES and (tonumber(f[6]) or 1) or 0) .. ':' ..
          (on > INLINE_PIECES and (tonumber(f[7]) or 1) or 0)
      end
      if dn <= INLINE_PIECES then data = long_value(job, 'data', f[3], f[6], data_more) end
      if on <= INLINE_PIECES then
        opts = long_value(job, 'opts', f[4] or '', f[4] and f[7], NO_PIECES)
      end
    end
    return note, name, data, opts, att
  end
  -- Claims job `id` (nil: the entry names none) from entry `sid` of lane number `lane`;
  -- `f` is its fields when read already (a job taken from its group). Appends its 10
  -- reply fields (move_to_active's header) to `out` after index `o` and returns the new
  -- end; nil when the entry is an orphan, for the caller to acknowledge and delete.
  function c.take(lane, sid, id, f, out, o)
    local job = id and (job_prefix .. id)
    local unreadable = nil
    if job and not f then f, unreadable = job_fields(job, CLAIM_FIELDS) end
    if unreadable then
      -- its key is not a hash: failed alone, its entry dropped
      fail_corrupt(job, id, unreadable, failed, now)
      late_failed[#late_failed + 1] = id
      return nil
    end
    if not job then return nil end
    local bad_sid = nil
    if f[1] ~= sid and not valid_sid(f[1]) and f[2] and not f[12] then
      -- a waiting job whose `sid` is corrupt: this entry is its own; take it back and
      -- fail the job (the worker does), naming the field
      bad_sid = 'bad:field sid is ' .. quoted(f[1]) .. ', not a lane entry'
      redis.call('HSET', job, 'sid', sid)
      f[1] = sid
    end
    if f[1] ~= sid or ENDED[f[12]] then
      -- removed while waiting, or moved to another entry (a repaired or re-prioritised
      -- job): the entry is an orphan. So is the entry of a job that ended (a waiting job
      -- has no `state`) while its entry was still to be delivered: a claim lost to a
      -- failover (Redis replicates asynchronously) left it undelivered on the promoted
      -- replica while its worker ran and recorded the job; run again, it was counted
      -- twice. (A `state` that is none of these, a corrupt record, is checked as the rest
      -- of the job is.)
      return nil
    end
    local note, name, data, opts, att
    local dn = f[6]
    if not bad_sid and not f[5] and not f[7] and f[3] and f[2] and #f[2] > 0
        and #f[2] <= NAME_MAX and (not f[4] or #f[4] <= opts_cap)
        and ((not dn and #f[3] <= data_cap) or (dn == '2' and f[8] and two_pieces_fit)) then
      -- the usual job, first attempt, data whole or in two pieces (both in hand), options
      -- whole: what checked_values finds for it, without its calls and tables
      note, name, att, opts = '', f[2], 0, f[4] or ''
      data = dn and f[3] .. f[8] or f[3]
    else
      note, name, data, opts, att = checked_values(job, f, bad_sid)
    end
    c.started[#c.started + 1] = id
    -- (a lean job given a record, run from another entry now: no longer in the set)
    if lean_n > 0 and lean_place(id) then c.left_lean[#c.left_lean + 1] = id end
    -- (positions counted, not found with `#` for each of the job's fields)
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = id, lane, sid, name,
      data or ''
    out[o + 6], out[o + 7], out[o + 8], out[o + 9], out[o + 10] = opts or '', att + 1, note,
      f[10] or '', f[11] or ''
    return o + 10
  end
  return c
end
