-- move_to_active: a worker's fetch. First promotes due delayed jobs (a bounded batch), then
-- claims up to `count` ready jobs from the lanes, highest priority first, and returns them.
-- A claimed job is active by being pending in its lane's consumer group (the hash of a job
-- from a lane is not written here, that of a job from a group only gets its entry: attempts
-- and start time are recorded when the attempt ends). The queue's
-- `waiting` counter tracks entries not yet delivered. All claims happen here, in one round
-- trip.
--
-- Queue limits (set_limits.lua) cut `count` down: a rate limit to what is left of the
-- current window (its counter is the limiter key, created with the window as TTL by the first
-- start of a window), a global concurrency to `conc` minus the entries pending in all lanes.
-- With no limit set they cost nothing beyond the one HMGET of the meta hash.
--
-- Groups (groups.rs): while any group has a turn (the ring is not empty), the `count` is
-- shared out turn by turn: each turn of a group takes its best waiting job, and the jobs
-- without a group have one turn after every full round of the groups (`upos` in meta
-- counts the group turns since theirs). A group at one of its limits is parked instead of
-- served, out of the ring until its window reopens (promoted here, like delayed jobs) or
-- one of its jobs ends (complete, fail_or_retry, reclaim, release). Each job a group turn
-- takes gets an entry in the group lane, read back at once by this consumer: active like
-- any other. The groups one call looks at (GROUPS_PER_CALL: served, parked, or dropped as
-- empty) and the parked groups it reopens (REOPEN_MAX) are bounded: each costs ~15 calls,
-- so a claim of 500 jobs from 500 one-job groups took ~40 ms on a slow machine. A call
-- that stops at a bound says to look again at once.
--
-- Bad data never spreads (the README's guarantee 8): every field a claim reads is checked. A job whose
-- stored fields are corrupt or over the size caps is still claimed, but comes back with a
-- note instead of its data, and the worker fails it alone (naming the job and the field)
-- through the usual fail_or_retry call, so counters stay exact. A delayed job whose `prio`
-- is corrupt cannot be put in a lane: it is failed here. Values stored in more than
-- INLINE_PIECES pieces are not read here, nor those past the call's budget of pieces
-- (INLINE_BUDGET: one call must stay short whatever the batch): the note asks the worker to
-- read them itself, a bounded call at a time.
--
-- KEYS: 1 meta, 2 lanes, 3 delayed, 4 marker, 5 events, 6 rate limiter, 7 failed,
--       8 per-minute failed list, 9 .. 8+L lane streams (priority desc)
-- ARGV: 1 group, 2 consumer, 3 count, 4 lanes version the caller knows, 5 events maxlen,
--       6 job key prefix, 7 promote batch size, 8 concurrency poll ms, 9 data cap bytes,
--       10 opts cap bytes, 11 .. 10+L lane priorities (as KEYS)
-- Returns: {'lanes', version} when the caller's lane list is stale, else
--          {'ok', next_due or -1, paused 0/1, start ms, limited ms or -1, fast 0/1, then per
--           job 10 fields: id, lane number, entry id, name, data, opts, this attempt's number,
--           note, its flow parent ('<queue>/<id>', '' none), its group ('' none); or for a
--           lean job without a record (prelude *Lean jobs*: its first attempt, its id made
--           of its lane and entry) 7: minus its lane number, entry id, name, data, opts, its
--           trace context ('' none), note ('' or 'bad:')}
--          `next_due` is also when the first group parked by its rate limit reopens
--          `fast` 1 when nothing but lane entries stood in this claim's way (no limit, no
--           group, no lean job with a record, no due job left): the next may be claim_fast's
--          `limited` >= 1 when a queue limit allows no more starts now: ms until the rate
--          window resets, or the concurrency poll (capacity frees when any worker finishes)
--          `note` is '' (all read), 'read:<data pieces>:<opts pieces>' (a value too long to
--          read here: 0 for one read whole), or 'bad:<reason>' (fail the job unrun)
local meta, lanes, delayed, marker, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local limiter, failed, per_minute = KEYS[6], KEYS[7], KEYS[8]
local group, consumer, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local maxlen, job_prefix, promote_max = ARGV[5], ARGV[6], tonumber(ARGV[7])
local conc_poll = tonumber(ARGV[8])
local data_cap, opts_cap = tonumber(ARGV[9]), tonumber(ARGV[10])
local FIRST_LANE = 9
-- distinct groups whose turns one call takes (served, parked or dropped)
local GROUPS_PER_CALL = 128
-- parked groups whose window reopened that one call gives their turns back
local REOPEN_MAX = 200
local L = #KEYS - FIRST_LANE + 1

-- every meta field this call needs, in one read
local m = redis.call('HMGET', meta, 'lanes_ver', 'paused', 'rate_max', 'rate_ms', 'conc',
  'waiting', 'gw', 'upos', 'gal')
local ver = m[1] or '0'
if ver ~= ARGV[4] then return {'lanes', ver} end

local lane_of = {}
for i = 1, L do lane_of[ARGV[10 + i]] = i end

-- one reading of the clock: promotion compares due times with it floored (never early),
-- and the attempts claimed here start at it rounded up, as add times are (add_job.lua), so
-- a job claimed in the millisecond it was added never starts "before" it was created
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local start = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)

-- promote due jobs into their lanes (all lanes checked before anything is written)
local due = on_index('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, promote_max)
local prio_of, corrupt, group_of = {}, {}, {}
local G = group_keys(job_prefix)
local PROMOTE_FIELDS = {'state', 'prio', 'grp'}
for i, id in ipairs(due) do
  local job = job_prefix .. id
  local f, unreadable = job_fields(job, PROMOTE_FIELDS)
  if not f then
    corrupt[i] = unreadable
  elseif f[1] or f[2] or redis.call('EXISTS', job) == 1 then
    local prio = f[2] or '0'
    if f[3] then
      -- a grouped job needs no lane, only a priority
      if not valid_priority(prio) then
        corrupt[i] = 'field prio is ' .. quoted(prio) .. ', not a priority from -1000 to 1000'
      end
      group_of[i] = f[3]
    elseif not lane_of[prio] then
      if not valid_priority(prio) then
        corrupt[i] = 'field prio is ' .. quoted(prio) .. ', not a priority from -1000 to 1000'
      else
        -- its lane vanished from the lanes set (keys deleted by hand): put it back and have
        -- the caller refresh; the next call gets the lane in KEYS (and recreates its group)
        on_index('ZADD', lanes, prio, prio)
        return {'lanes', tostring(hincr(meta, 'lanes_ver', 1))}
      end
    end
    prio_of[i] = prio
  end
end
local moved, promoted, failed_ids = {}, {}, {}
for i, id in ipairs(due) do
  moved[#moved + 1] = id
  local job = job_prefix .. id
  if corrupt[i] then
    fail_corrupt(job, id, corrupt[i], failed, now)
    failed_ids[#failed_ids + 1] = id
  elseif group_of[i] then
    group_wait(G, job, id, prio_of[i], group_of[i], false, 'due')
    promoted[#promoted + 1] = id
  elseif prio_of[i] then
    local sid = on_index('XADD', KEYS[FIRST_LANE - 1 + lane_of[prio_of[i]]], '*', 'i', id)
    set_waiting(job, sid, 'due')
    promoted[#promoted + 1] = id
  end
end
if #moved > 0 then redis.call('ZREM', delayed, unpack(moved)) end
if #promoted > 0 then hincr(meta, 'waiting', #promoted) end
emit_ids(events, maxlen, 'waiting', promoted)
count_failed_unrun(meta, per_minute, events, maxlen, now, failed_ids)
-- jobs failed later in this call: those whose key turned out not to be a hash
local late_failed = {}

-- a queue without groups pays two counts here; a group set of the wrong type (a corrupt
-- record) is deleted before any use (group_keys_sane)
local ring_n, parked_n = redis.pcall('ZCARD', G.ring), redis.pcall('ZCARD', G.park)
if type(ring_n) ~= 'number' or type(parked_n) ~= 'number' or ring_n + parked_n > 0 then
  -- (the active counts' set may be found corrupt just now: flagged as `gal` is)
  if group_keys_sane(G) then m[9] = '1' end
  ring_n, parked_n = redis.call('ZCARD', G.ring), redis.call('ZCARD', G.park)
end
-- (what claim_fast's seal looks at: no group in the ring or parked)
local no_groups = ring_n + parked_n == 0
-- groups parked by their rate limit whose window reopened get their turns again
local reopened = parked_n > 0
  and redis.call('ZRANGEBYSCORE', G.park, '-inf', now, 'LIMIT', 0, REOPEN_MAX) or {}
for _, g in ipairs(reopened) do group_unpark(G, g) end

local next_due = -1
if #due == promote_max or #reopened == REOPEN_MAX then
  next_due = now
else
  local head = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if #head > 0 then next_due = tonumber(head[2]) end
end
-- (the park's lowest score is finite when any group waits for a window: `inf` sorts last)
local function parked_due()
  if parked_n == 0 then return end
  local p = redis.call('ZRANGE', G.park, 0, 0, 'WITHSCORES')
  local at = p[2] and tonumber(p[2])
  if at and at ~= math.huge and (next_due < 0 or at < next_due) then next_due = at end
end

if m[2] == '1' then
  parked_due()
  return {'ok', next_due, 1, start, -1, 0}
end

-- queue limits: how many of `want` may start now. A stored limit that is not a whole
-- number from 1 to 2^53 (what the limits take; a corrupt record) is ignored rather than
-- stopping the queue (limits.rs `stored_limit` reads it the same way).
local function limit_value(v)
  local n = tonumber(v)
  if n and n >= 1 and n <= 9007199254740992 and n == math.floor(n) then return n end
  return nil
end
-- a stored group rate, '<max>/<ms>' in digits: both limit values, or nil
local function rate_of(r)
  local m, w = string.match(r or '', '^(%d+)/(%d+)$')
  m, w = limit_value(m), limit_value(w)
  if m and w then return m, w end
  return nil
end
-- The starts rate window counter `key` has counted (0 for none). A corrupt one (not a
-- count: Lua also reads 'nan' and 'inf' as numbers) is deleted and counts 0: the window
-- starts again (kept, it would let every start through and never expire).
local function window_used(key)
  local u = redis.pcall('GET', key)
  if u == false then return 0 end
  local n = type(u) == 'string' and tonumber(u) or nil
  if not n or n ~= n or n < 0 or n == math.huge then
    redis.call('DEL', key)
    return 0
  end
  return n
end
local want = count
local rate_max, conc = limit_value(m[3]), limit_value(m[5])
local rate_ms = limit_value(m[4]) or 1000
local used, active = 0, 0
if rate_max then
  used = window_used(limiter)
  count = math.min(count, rate_max - used)
end
if conc then
  for lane = 1, L do
    local p = redis.pcall('XPENDING', KEYS[FIRST_LANE - 1 + lane], group)
    -- a lane without its group (deleted by hand) holds nothing active
    if type(p) == 'table' and not p.err then active = active + p[1] end
  end
  count = math.min(count, conc - active)
end
-- ms until a limit could let more through, once `got` more have started; -1: not limited
local function limited(got)
  local wait = -1
  if rate_max and used + got >= rate_max then
    wait = redis.call('PTTL', limiter)
    if wait == -1 then
      -- a counter without its expiry would block the queue for good: restore it
      wait = rate_ms
      redis.call('PEXPIRE', limiter, wait)
    end
    wait = math.max(wait, 1)
  end
  if conc and active + got >= conc then wait = math.max(wait, conc_poll) end
  return wait
end
if count <= 0 then
  parked_due()
  return {'ok', next_due, 0, start, limited(0), 0}
end

-- the groups' turns: which group jobs to take, and how many turns the jobs without a group
-- get (all of them while no group has a turn). The turns are decided here first, with each
-- group's counts read once and kept locally; then each group served gives all its jobs in
-- one pop, and the ring, the counts and the windows are written once per group.
-- the fields of the jobs taken from their groups (CLAIM_FIELDS), read already
local pre = {}
local ungrouped, taken, turns = count, {}, nil
-- the first group lane entry this call adds (read_lane)
local first_new = nil
if #reopened > 0 then ring_n = redis.call('ZCARD', G.ring) end
-- the groups' active counts were lost (prelude active_lost): made again from the group
-- lane's pending entries, or no grouped job starts in this call: every group would count
-- none running and start a full quota beside its jobs (they only end meanwhile, so the
-- recount gets within its bound)
if m[9] and ring_n > 0 then
  local by = group_lane_counts(G, group, job_prefix)
  if by then
    redis.call('DEL', G.active)
    local counts = {}
    for g, n in pairs(by) do
      counts[#counts + 1] = n
      counts[#counts + 1] = g
    end
    for i = 1, #counts, 1000 do
      redis.call('ZADD', G.active, unpack(counts, i, math.min(i + 999, #counts)))
    end
    redis.call('HDEL', meta, 'gal')
  else
    ring_n = 0
  end
end
if ring_n > 0 then
  if not lane_of[GROUP_LANE] then
    -- the group lane is new: create it, and have the caller refresh its lanes first
    open_lane(meta, lanes, G.lane, GROUP_LANE, group)
    return {'lanes', redis.call('HGET', meta, 'lanes_ver')}
  end
  ungrouped, turns = 0, {}
  local others = (tonumber(m[6]) or 0) - (tonumber(m[7]) or 0)
  if others <= 0 then
    -- the counters say every waiting job is in a group: the lanes are asked, so a counter
    -- that is wrong (a corrupt record) never keeps the jobs without a group behind the
    -- groups' turns (the README's guarantee 8); counted whole (up to RECOUNT_MAX), the
    -- counter is set right, with `gw` as it is now (promotion may have changed it)
    local found, exact = 0, true
    for lane = 1, L do
      if ARGV[10 + lane] ~= GROUP_LANE then
        local n = undelivered(KEYS[FIRST_LANE - 1 + lane], group, RECOUNT_MAX - found)
        found = found + n
        if found > RECOUNT_MAX then
          exact = false
          break
        end
      end
    end
    if found > 0 then
      others = found
      if exact then
        local gw = tonumber(redis.call('HGET', meta, 'gw')) or 0
        redis.call('HSET', meta, 'waiting', gw + found)
      end
    end
  end
  local upos = tonumber(m[8]) or 0
  -- (a limits key that is not a hash, a corrupt record, limits nothing)
  local defaults = redis.pcall('HMGET', G.limits, 'c', 'r')
  if type(defaults) ~= 'table' or defaults.err then defaults = {} end
  local def_c = limit_value(defaults[1])
  local def_rmax, def_rms = rate_of(defaults[2])
  local fields = redis.pcall('HLEN', G.limits)
  local overrides = type(fields) == 'number'
    and fields > (defaults[1] and 1 or 0) + (defaults[2] and 1 or 0)
  -- groups popped from the ring and not served yet (with their turn, to go back unserved),
  -- then the groups served, in the order of their next turn
  local fresh, fresh_at, fi, back, bi = {}, {}, 1, {}, 1
  local st, served, counted = {}, {}, {}
  local n_taken = 0
  -- whether the call stopped at GROUPS_PER_CALL
  local at_bound = false
  -- (the ring gains no group while this call decides: once popped whole, never again)
  local ring_left = ring_n
  local function next_group()
    if fi > #fresh and ring_left > 0 then
      -- (no more than this call may still look at: the rest keep their places)
      local p = redis.call('ZPOPMIN', G.ring, math.max(
        math.min(count - n_taken - ungrouped, GROUPS_PER_CALL - #served), 1))
      ring_left = p[1] and ring_left - #p / 2 or 0
      fresh, fresh_at, fi = {}, {}, 1
      for i = 1, #p, 2 do
        fresh[#fresh + 1] = p[i]
        fresh_at[#fresh_at + 1] = p[i + 1]
      end
      -- their waiting and active counts, two reads for them all
      if #fresh > 0 then
        local w = redis.call('ZMSCORE', G.waiting, unpack(fresh))
        local a = redis.call('ZMSCORE', G.active, unpack(fresh))
        for i, g in ipairs(fresh) do
          counted[g] = {tonumber(w[i]) or 0, tonumber(a[i]) or 0}
        end
      end
    end
    if fi <= #fresh then
      fi = fi + 1
      return fresh[fi - 1]
    end
    if bi <= #back then
      bi = bi + 1
      return back[bi - 1]
    end
    return nil
  end
  -- this call's view of group `g`: its limits, active and waiting counts, rate window
  local function state(g)
    local s = st[g]
    if s then return s end
    local c, rmax, rms = def_c, def_rmax, def_rms
    if overrides then
      -- an override that is not a limit (a corrupt record) is ignored: the default applies
      -- (groups.rs `parse_limit` reads them the same way)
      local o = redis.call('HMGET', G.limits, 'c:' .. g, 'r:' .. g)
      c = limit_value(o[1]) or c
      local om, ow = rate_of(o[2])
      if om then rmax, rms = om, ow end
    end
    -- (every group served was popped from the ring, its counts read then)
    local n = counted[g] or {0, 0}
    s = {c = c, rmax = rmax, rms = rms, took = 0, rkey = G.rate .. g, left = n[1], act = n[2]}
    s.used = s.rmax and window_used(s.rkey) or 0
    st[g] = s
    served[#served + 1] = g
    return s
  end
  local function park(g, s, why)
    local at = 'inf'
    if why == 'rate' then
      -- when its window reopens (a counter without expiry gets one, and a window longer
      -- than the group's limit now, set shorter since it began, is cut down to it)
      local ttl = redis.call('PTTL', s.rkey)
      if ttl < 0 or ttl > s.rms then
        ttl = s.rms
        redis.call('PEXPIRE', s.rkey, ttl)
      end
      at = now + math.max(ttl, 1)
    end
    redis.call('ZADD', G.park, at, g)
    ring_n = ring_n - 1
  end
  while n_taken + ungrouped < count do
    if ungrouped < others and (upos >= ring_n or ring_n <= 0) then
      ungrouped = ungrouped + 1
      upos = 0
      turns[#turns + 1] = false
    elseif ring_n <= 0 then
      break
    else
      local g = next_group()
      if g and not st[g] and #served >= GROUPS_PER_CALL then
        -- as many groups as one call may look at: `g` (just popped, fresh: a group seen
        -- already is in `st`) goes back unserved at its turn, and the worker looks again
        fi = fi - 1
        at_bound = true
        break
      end
      if not g then ring_n = 0 else
        upos = upos + 1
        local s = state(g)
        if s.c and s.act + s.took >= s.c then
          park(g, s, 'conc')
        elseif s.rmax and s.used + s.took >= s.rmax then
          park(g, s, 'rate')
        elseif s.left - s.took <= 0 then
          -- an empty group left in the ring: it drops out
          ring_n = ring_n - 1
        else
          s.took = s.took + 1
          n_taken = n_taken + 1
          turns[#turns + 1] = g
          -- its next turn, unless it is empty or now at a limit
          if s.left - s.took <= 0 then
            ring_n = ring_n - 1
          elseif s.c and s.act + s.took >= s.c then
            park(g, s, 'conc')
          elseif s.rmax and s.used + s.took >= s.rmax then
            park(g, s, 'rate')
          else
            back[#back + 1] = g
          end
        end
      end
    end
  end
  redis.call('HSET', meta, 'upos', upos)
  -- stopped at GROUPS_PER_CALL (turns spent parking groups or dropping empty ones count
  -- too): more may be ready, look again now. (A group that gets a second turn in a call was
  -- under its limits with jobs left at its first, so only first turns park or drop one.)
  if at_bound then next_due = now end
  -- each group served gives its jobs, best first, at once; counts and windows follow
  local got_of, n_got, dropped = {}, 0, 0
  local active_now, waiting_now, emptied = {}, {}, {}
  for _, g in ipairs(served) do
    local s = st[g]
    if s.took > 0 then
      -- (a range then a removal by rank: cheaper than ZPOPMIN, which formats every score)
      local p = redis.pcall('ZRANGE', G.q .. g, 0, s.took - 1)
      if p.err then
        -- its queue is not a sorted set (a corrupt record, no job of ours in it): deleted,
        -- so this group alone comes out empty, never the claim of every group; the repair
        -- sweep puts its waiting jobs back (repair.lua)
        redis.call('DEL', G.q .. g)
        p = {}
      end
      if #p > 0 then redis.call('ZREMRANGEBYRANK', G.q .. g, 0, #p - 1) end
      local ids = {}
      for i = 1, #p do
        -- only a stored job waiting in its group runs: one whose hash is gone, or that is
        -- in another state, was left behind (a corrupt record) and is dropped; one that
        -- lost its `grp` field gets back the group it waited in
        local id = p[i]
        local f, unreadable = job_fields(job_prefix .. id, CLAIM_FIELDS)
        if not f then
          -- its key is not a hash: failed alone (it leaves the group's waiting jobs)
          fail_corrupt(job_prefix .. id, id, unreadable, failed, now)
          late_failed[#late_failed + 1] = id
          dropped = dropped + 1
        elseif f[1] == IN_GROUP and not f[12] then
          if f[11] ~= g then
            redis.call('HSET', job_prefix .. id, 'grp', g)
            f[11] = g
          end
          pre[id] = f
          ids[#ids + 1] = id
        else
          dropped = dropped + 1
        end
      end
      got_of[g], s.next = ids, 1
      local n = #ids
      n_got = n_got + #p
      if n > 0 then
        active_now[#active_now + 1] = s.act + n
        active_now[#active_now + 1] = g
        if s.rmax then
          if s.used == 0 then
            redis.call('SET', s.rkey, n, 'PX', s.rms)
          else
            redis.pcall('INCRBY', s.rkey, n)
          end
        end
      end
      -- (fewer than its count said: the count was wrong, and the group is empty now)
      if #p < s.took or s.left - #p <= 0 then
        emptied[#emptied + 1] = g
        s.empty = true
      elseif #p > 0 then
        waiting_now[#waiting_now + 1] = s.left - #p
        waiting_now[#waiting_now + 1] = g
      end
    end
  end
  -- the groups' new counts, one write for them all
  for i = 1, #active_now, 1000 do
    redis.call('ZADD', G.active, unpack(active_now, i, math.min(i + 999, #active_now)))
  end
  for i = 1, #waiting_now, 1000 do
    redis.call('ZADD', G.waiting, unpack(waiting_now, i, math.min(i + 999, #waiting_now)))
  end
  for i = 1, #emptied, 1000 do
    redis.call('ZREM', G.waiting, unpack(emptied, i, math.min(i + 999, #emptied)))
  end
  if n_got > 0 then hincr(meta, 'gw', -n_got) end
  -- the jobs dropped leave the queue's waiting count here (no entry will be read for them)
  if dropped > 0 then hincr(meta, 'waiting', -dropped) end
  -- back in the ring: the groups served, last, in the order of their next turn; those
  -- popped but not reached, where they were
  local tail, again = nil, {}
  for i = bi, #back do
    local g = back[i]
    if not st[g].empty then
      if not tail then
        local t = redis.call('ZRANGE', G.ring, -1, -1, 'WITHSCORES')
        tail = t[2] and tonumber(t[2]) or 0
        -- (the unserved go back at their own turns, which may be later than any left)
        for k = fi, #fresh do tail = math.max(tail, tonumber(fresh_at[k])) end
      end
      tail = tail + 1
      again[#again + 1] = tail
      again[#again + 1] = g
    end
  end
  for k = fi, #fresh do
    again[#again + 1] = fresh_at[k]
    again[#again + 1] = fresh[k]
  end
  for i = 1, #again, 1000 do
    redis.call('ZADD', G.ring, 'NX', unpack(again, i, math.min(i + 999, #again)))
  end
  -- every job taken gets its entry in the group lane now, in the order of the turns, and
  -- is read back below (a lane that is not a stream, a corrupt record, is made again: it
  -- holds no entry of ours, and the sweep puts back the jobs it held)
  for _, g in ipairs(turns) do
    if g then
      local s = st[g]
      local id = got_of[g][s.next]
      if id then
        s.next = s.next + 1
        taken[#taken + 1] = id
        local sid = on_index('XADD', G.lane, '*', 'i', id)
        first_new = first_new or sid
        redis.call('HSET', job_prefix .. id, 'sid', sid, 'ln', GROUP_LANE)
        pre[id][1] = sid
      end
    end
  end
end
parked_due()

local got, delivered = 0, 0
local FIELDS = 10
-- a lean job's record is shorter
local LEAN_FIELDS = 7
-- lean jobs given a record: while there are none, a lean entry is read as it is
local lean_set = lean_records_key(job_prefix)
local lean_n = on_index('SCARD', lean_set)
local claims = stored_claims(job_prefix, failed, now, data_cap, opts_cap, lean_n, late_failed)
-- whether the next claim may read its lane with a plain XREADGROUP (claim_fast.lua): no limit
-- set, no group with a turn or parked, no lean job with a record, no due job left behind
local fast = not m[3] and not m[5] and no_groups and lean_n == 0 and #due < promote_max
local out = {'ok', next_due, 0, start, -1, fast and 1 or 0}
-- reads up to `n` entries of lane `lane` (its number in KEYS) for this consumer, each
-- job's fields appended to `out`
local function read_lane(lane, n, out)
  local key = KEYS[FIRST_LANE - 1 + lane]
  local res = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', n,
    'STREAMS', key, '>')
  if type(res) == 'table' and res.err then
    if string.find(res.err, 'WRONGTYPE', 1, true) then
      -- not a stream (a corrupt record): it holds no entry of ours; made again below, and
      -- the repair sweep gives the jobs that waited in it new entries
      redis.call('DEL', key)
    elseif not string.find(res.err, 'NOGROUP') then
      error(res.err)
    end
    -- the lane's stream or group was deleted by hand: recreate the group and read again.
    -- The group lane's entries are read in the call that adds them, so one older than this
    -- call's first is no job's to run: its group starts just before that one (from the
    -- start, it would read old entries in place of the new ones, leaving those unread)
    local from = '0'
    if key == G.lane and first_new then
      local before = redis.call('XREVRANGE', key, '(' .. first_new, '-', 'COUNT', 1)
      if before[1] then from = before[1][1] end
    end
    redis.call('XGROUP', 'CREATE', key, group, from, 'MKSTREAM')
    res = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', n,
      'STREAMS', key, '>')
  end
  if res then
    local stale = {}
    local o = #out
    local prio = ARGV[10 + lane]
    -- the entries of the lean jobs taken, for their event
    local lean_sids = {}
    delivered = delivered + #res[1][2]
    for _, entry in ipairs(res[1][2]) do
      local sid, fields = entry[1], entry[2]
      local id = entry_id(fields)
      -- a lean job (prelude *Lean jobs*) is its entry, unless it was given a record
      local lean = false
      -- (only priority lanes hold lean jobs: an entry of that shape in the front or the
      -- group lane is no job's, dropped below)
      if not id and fields[1] == 'n' and prio ~= FRONT_LANE and prio ~= GROUP_LANE then
        lean = lean_n == 0 or redis.call('SISMEMBER', lean_set, lean_id(prio, sid)) == 0
        -- (given a record while it waited: from now on it is run, and ends, as any other)
        if not lean then id = lean_id(prio, sid) end
      end
      if lean then
        local name, data, opts, tp, k = fields[2] or '', fields[3] == 'd' and fields[4], '', '', 5
        if fields[k] == 'o' then
          opts = fields[k + 1]
          k = k + 2
        end
        if fields[k] == 't' then tp = fields[k + 1] end
        local note = ''
        if name == '' or #name > NAME_MAX then
          note = 'bad:field name is ' .. #name .. ' bytes, not 1 to ' .. NAME_MAX
          name = ''
        elseif not data then
          note = 'bad:field data is missing'
        elseif #data > data_cap then
          note = 'bad:field data is ' .. #data .. ' bytes, over the cap of ' .. data_cap
        elseif #opts > opts_cap then
          note = 'bad:field opts is ' .. #opts .. ' bytes, over the cap of ' .. opts_cap
        end
        -- (a corrupt one is failed alone by the worker, which gives it a record then:
        -- fail_or_retry)
        got = got + 1
        lean_sids[#lean_sids + 1] = sid
        out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6] = -lane, sid,
          name, data, opts, tp
        out[o + 7] = note
        o = o + LEAN_FIELDS
      else
        local next_o = claims.take(lane, sid, id, pre[id], out, o)
        if next_o then
          got, o = got + 1, next_o
        else
          stale[#stale + 1] = sid
        end
      end
    end
    drop_orphans(key, group, stale)
    emit_lean(events, maxlen, 'active', prio, lean_sids)
  end
end
if not turns or ungrouped == 0 or #taken == 0 then
  -- one kind of turn only: read straight into the reply
  for lane = 1, L do
    if got >= ungrouped then break end
    if ARGV[10 + lane] ~= GROUP_LANE then read_lane(lane, ungrouped - got, out) end
  end
  if #taken > 0 then read_lane(lane_of[GROUP_LANE], #taken, out) end
else
  -- the jobs come back in the order of their turns (the worker starts them in this order)
  local plain, grouped = {}, {}
  for lane = 1, L do
    if got >= ungrouped then break end
    if ARGV[10 + lane] ~= GROUP_LANE then read_lane(lane, ungrouped - got, plain) end
  end
  if #taken > 0 then read_lane(lane_of[GROUP_LANE], #taken, grouped) end
  local p, g = 1, 1
  local function move(from, i)
    -- (a lean job's record starts with minus its lane number)
    local n = type(from[i]) == 'number' and from[i] < 0 and LEAN_FIELDS or FIELDS
    for k = i, i + n - 1 do out[#out + 1] = from[k] end
    return i + n
  end
  for _, is_group in ipairs(turns) do
    if is_group and g <= #grouped then g = move(grouped, g)
    elseif not is_group and p <= #plain then p = move(plain, p) end
  end
  while p <= #plain do p = move(plain, p) end
  while g <= #grouped do g = move(grouped, g) end
end
count_failed_unrun(meta, per_minute, events, maxlen, now, late_failed)
if delivered > 0 then hincr(meta, 'waiting', -delivered) end
if #claims.left_lean > 0 then redis.call('SREM', lean_set, unpack(claims.left_lean)) end
emit_ids(events, maxlen, 'active', claims.started)
if rate_max and got > 0 then
  if used == 0 then
    -- the first start of a window opens it
    redis.call('SET', limiter, got, 'PX', rate_ms)
  else
    redis.pcall('INCRBY', limiter, got)
  end
end
if rate_max or conc then
  out[5] = limited(got)
  if out[5] >= 0 then return out end
end
-- a full batch may leave more behind: let another blocked worker look too
if got >= want then wake(marker, 0) end
return out
