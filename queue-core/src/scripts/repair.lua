-- repair: the consistency sweep. Checks a batch of job hashes against the structures their
-- state says they are in, and puts back any job left between states: a waiting job whose
-- lane entry is gone (and not held by a worker) gets a new one; a delayed job missing from the delayed set is put back;
-- a finished job missing from its retention set is added to it (so retention can remove it);
-- a flow parent waiting for its children missing from the waiting-children set is put back,
-- due for a look at once (the safety net then settles its finished children), and a staged
-- flow job missing from the staged set is put back, as staged now.
--
-- A grouped job waiting in its group is put back in its group's queue if it left it; one
-- claimed from its group whose entry vanished unrecorded waits first in its group again.
--
-- A waiting job whose lane is missing from the lanes set (deleted by hand) gets its lane
-- back there, so workers read it again.
--
-- KEYS: 1 meta, 2 delayed, 3 completed, 4 failed, 5 marker, 6 lanes, 7 .. 6+L lane streams,
--       7+L .. job hashes
-- ARGV: 1 group, 2 L, 3 .. 2+L lane priorities, then the job ids (as the job KEYS)
-- Returns: number of jobs repaired
local meta, delayed, completed, failed, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local lanes = KEYS[6]
-- the flow sets, beside meta (keys.rs `waiting_children`, `staged`)
local base = string.sub(meta, 1, -6)
local waiting_children, staged = base .. ':wc', base .. ':staged'
local group, L = ARGV[1], tonumber(ARGV[2])
local lane_of = {}
for i = 1, L do lane_of[ARGV[2 + i]] = 6 + i end
local repaired, newly_waiting = 0, 0
-- a lane stream missing from the lanes set (deleted by hand) gets its place back, so
-- workers read it again: the waiting jobs below put theirs back too, but a lane of lean
-- jobs (prelude *Lean jobs*) has no job hash to be found by
for i = 1, L do
  if redis.call('TYPE', KEYS[6 + i])['ok'] == 'stream' and not on_index('ZSCORE', lanes, ARGV[2 + i]) then
    open_lane(meta, lanes, KEYS[6 + i], ARGV[2 + i], group)
    repaired = repaired + 1
  end
end
local G = group_keys(base .. ':j:')
local last_of = {}
for j = 7 + L, #KEYS do
  local job = KEYS[j]
  local id = ARGV[j - 4]
  local f = redis.pcall('HMGET', job, 'state', 'sid', 'prio', 'due', 'finished', 'ln', 'stg',
    'grp')
  -- a job key that is not a hash (a corrupt record) has nothing to repair; it must not fail
  -- the batch, or the sweep would stop at it on every pass
  if type(f) ~= 'table' or f.err then f = {} end
  local state, sid = job_state(f[1], f[2]), f[2]
  if state == 'waiting' and f[8] and sid == IN_GROUP then
    -- waiting in its group: put back in its group's queue if it left it (still counted
    -- as waiting; group_enqueue counts it among the groups' waiting jobs again)
    if not redis.call('ZSCORE', G.q .. f[8], id) then
      group_enqueue(G, id, f[3], f[8], false)
      hincr(meta, 'gw', -1)
      repaired = repaired + 1
    elseif not redis.call('ZSCORE', G.waiting, f[8]) then
      -- its group lost its count (which the claim goes by): counted again, with its turn
      redis.call('ZADD', G.waiting, redis.call('ZCARD', G.q .. f[8]), f[8])
      if not redis.call('ZSCORE', G.park, f[8]) then ring_add(G, f[8]) end
      repaired = repaired + 1
    end
  elseif state == 'waiting' and f[8] and f[6] == GROUP_LANE then
    -- claimed from its group: while its group lane entry is pending, a worker holds it;
    -- else its attempt ended unrecorded (the entry or the lane's group deleted by hand), so
    -- it frees its group's slot and waits first in its group again. (An entry there but not
    -- pending holds no one: the claim reads each entry of the group lane in the call that
    -- adds it.)
    local present = valid_sid(sid) and pending_entry(G.lane, group, sid)
    if not present then
      group_done(G, f[8])
      group_wait(G, job, id, f[3], f[8], true)
      newly_waiting = newly_waiting + 1
      repaired = repaired + 1
    end
  elseif state == 'waiting' then
    local name = lane_name(f[6], f[3])
    local lane = lane_of[name]
    if not lane and (valid_priority(name) or name == FRONT_LANE)
        and not on_index('ZSCORE', lanes, name) then
      -- its lane left the lanes set: put it back (the next claim reads the new lane list)
      on_index('ZADD', lanes, name, name)
      hincr(meta, 'lanes_ver', 1)
      repaired = repaired + 1
    end
    if lane then
      -- a corrupt `sid` (not an entry id) points nowhere: the job gets a new entry, and the
      -- entry it had is dropped as an orphan when claimed
      local present = valid_sid(sid) and (#redis.call('XRANGE', KEYS[lane], sid, sid) > 0
        -- still pending: a worker holds it; its outcome, lease or a reclaim settles it
        or pending_entry(KEYS[lane], group, sid))
      if not present then
        -- The `waiting` counter still counts a lost entry that was never delivered (its id
        -- is past the group's last delivered one); one that was delivered is not counted
        -- there any more, so its replacement adds one.
        last_of[lane] = last_of[lane] or last_delivered(KEYS[lane], group)
        if not (sid and id_gt(sid, last_of[lane])) then
          newly_waiting = newly_waiting + 1
        end
        local new_sid = on_index('XADD', KEYS[lane], '*', 'i', id)
        redis.call('HSET', job, 'sid', new_sid)
        repaired = repaired + 1
      end
    end
  elseif state == 'delayed' then
    if not on_index('ZSCORE', delayed, id) then
      -- a corrupt due time is due now (0), never an error for the whole batch
      on_index('ZADD', delayed, tonumber(f[4] or '0') or 0, id)
      repaired = repaired + 1
    end
  elseif state == 'waiting_children' then
    local set, score = waiting_children, 0
    if f[7] then set, score = staged, now_ms() end
    if not on_index('ZSCORE', set, id) then
      on_index('ZADD', set, score, id)
      repaired = repaired + 1
    end
  elseif state == 'completed' or state == 'failed' or state == 'cancelled' then
    local set = ({completed = completed, failed = failed})[state]
      or cancel_keys(base .. ':j:').set
    -- (a set of the wrong type, a corrupt record, is left to its own repair: never an
    -- error for the whole batch)
    local in_set = redis.pcall('ZSCORE', set, id)
    if in_set == false then
      on_index('ZADD', set, tonumber(f[5] or '0') or 0, id)
      repaired = repaired + 1
    end
  end
end
if newly_waiting > 0 then hincr(meta, 'waiting', newly_waiting) end
if repaired > 0 then wake(marker, 0) end
return repaired
