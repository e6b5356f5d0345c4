-- settle: records finished children in their parents (all of this queue), from the
-- children's outboxes. A child counts once: its entry in its parent's children hash goes
-- from pending to its outcome, and only that moment counts it down (`kp`), so a
-- notification delivered twice (a worker died before deleting it from the outbox, or two
-- workers delivered it) changes nothing. The last child releases the parent; a child
-- that failed for good fails it, unless the parent ignores failed children (`ocf`). A
-- parent still staged is only counted down: its flow's commit decides (flow_commit). A
-- parent whose records are corrupt is skipped whole (its children stay pending), never
-- failing the call for the other parents.
--
-- KEYS, ARGV 1-3: as flow.lua; ARGV: 4 N, then per child: parent id, '<queue>/<id>' of
--   the child, 'c' | 'f' | 'r' | 'x' (completed, failed, removed, cancelled), return value
--   or reason
-- Returns: {children counted, 1 if the outbox was written}
local N = tonumber(ARGV[4])
local now = now_ms()
-- the notices by parent, in order (a fan-in delivers many children of one parent in a call)
local parents = {}
for j = 0, N - 1 do
  local a = 4 + j * 4
  local pid = ARGV[a + 1]
  if not parents[pid] then
    parents[pid] = {}
    parents[#parents + 1] = pid
  end
  table.insert(parents[pid], a)
end
-- each parent whole, once: its children's entries go from pending to their outcomes and
-- its count goes down by as many, or (a parent whose records are corrupt) nothing does
-- the first letters of a child entry that records an outcome (children.rs `parse`)
local OUTCOME_LETTERS = {c = true, f = true, r = true, x = true}
local counted = 0
for _, pid in ipairs(parents) do
  local job = Q.job_prefix .. pid
  local kids = kids_key(Q.job_prefix, pid)
  local f = flow_fields(job)
  local n, failure = 0, nil
  local kind = redis.call('TYPE', kids)['ok']
  if f and kind ~= 'hash' and kind ~= 'none' then
    -- its children's record is not a hash (a corrupt record): no child can ever count
    -- down, so the parent fails now, alone, naming it (a staged one once its flow's add
    -- commits it; the safety net, flow/reconcile.rs, sends a notice for such a parent)
    if f[1] == 'waiting_children' and not f[2] then
      f[8] = 'its children\'s record ' .. kids .. ' ' .. wrong_type(kids, 'hash') ..
        ': their outcomes cannot be kept'
      parent_next(job, pid, f, now, true)
    end
    f = nil
  end
  for _, a in ipairs(f and parents[pid] or {}) do
    local ref, s, v = ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
    local cur = redis.pcall('HGET', kids, ref)
    -- pending: 'p', or no outcome letter at all (a corrupt entry, read as pending as the
    -- listing does: else its child never counts and the parent waits for ever)
    local letter = type(cur) == 'string' and string.sub(cur, 1, 1)
    local rest = letter == 'p' and string.sub(cur, 2) or ''
    if letter and not OUTCOME_LETTERS[letter]
        and type(redis.pcall('HSET', kids, ref, s .. rest .. '\n' .. v)) == 'number' then
      n = n + 1
      if s == 'f' and not failure then failure = 'child ' .. ref .. ' failed: ' .. v end
    end
  end
  counted = counted + n
  -- what it waits for counts down whatever its state: a cancelled (or failed) parent's
  -- children finish after it, and its `children_pending` must come to 0 with them
  if n > 0 and (f[3] or f[1] == 'waiting_children') then
    f[3] = tostring(hincr(job, 'kp', -n))
  end
  if n > 0 and f[1] == 'waiting_children' then
    if failure and f[4] ~= 'i' and not f[8] then
      f[8] = failure
      if f[2] then redis.call('HSET', job, 'kf', f[8]) end
    end
    -- a staged parent is left to its commit
    if not f[2] and (f[8] or tonumber(f[3]) <= 0) then
      parent_next(job, pid, f, now, true)
    end
  end
end
return {counted, finish(now)}
