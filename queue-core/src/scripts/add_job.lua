-- add_job: store a batch of new jobs (one for `add`, a chunk for `add_bulk`).
-- Ready jobs get their id appended to their priority lane's stream, or wait in their group
-- (group_wait in the prelude); delayed jobs go to the delayed set. A job whose id is already
-- stored is left untouched (idempotent add); a job whose dedup key is still alive (throttle:
-- the key lives `ttl` ms after the first add) is dropped and the job holding the key is
-- reported instead. A job whose debounce key names a job that has not started (debounce:
-- the key lives `ttl` ms after the last add) is not stored either: that kept job takes its
-- name and data and is due after its delay (see `debounce` below).
--
-- An add is applied once, whatever it is sent again for (its reply lost to a timeout, then
-- replayed from a spool file): a job with a given id that is stored already is left alone
-- before any key is looked at, and an add a debounced job took is remembered under its id
-- (in the debounce id's merged hash, for the key's life) and answered the same way again.
--
-- KEYS: 1 meta, 2 lanes, 3 delayed, 4 marker, 5 events,
--       6 .. 5+L lane streams, 6+L .. 5+L+N job hashes, then the dedup keys in use, then
--       the debounce keys in use, then their merged hashes (keys.rs `debounce_merged`), as
--       many and in the same order
-- ARGV: 1 L, 2 N, 3 group, 4 events maxlen, 5 D (how many of those keys are dedup keys),
--       6 .. 5+L lane priorities,
--       then per job 8 fields (a lean job's: '', lane number, F, then its lane entry's F
--       fields: 'n', name, 'd', data, then 'o', opts and 't', trace context if it has
--       them): id, delay ms, lane number (1..L; 0 for a grouped job), '1'
--       if the id was given by the user (only those can already exist), key number among
--       the dedup and debounce KEYS (0 = none; 1..D a dedup key, past D a debounce key),
--       its ttl ms, its group ('' none), F; then F hash field/value arguments stored as
--       they are (name, data and opts in pieces, prio; cut by the caller, see job.rs
--       `pieces`), the first ones with empty values this script fills in: 'ts', '', 'sid',
--       '' for a ready job; 'ts', '', 'state', 'delayed', 'due', '' for a delayed one;
--       then 'name' and the `data` pieces
-- Returns: per job its lane entry id (a lean job), '' (stored), the id of the job it
--          duplicates, ' ' .. the id of the job it was debounced into, or '  ' .. that id
--          when this add was debounced into it already (sent again; ids have no spaces)
local L = tonumber(ARGV[1])
local N = tonumber(ARGV[2])
local group, maxlen, D = ARGV[3], ARGV[4], tonumber(ARGV[5])
local meta, lanes, delayed, marker, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- the debounce keys in use: B, each with its merged hash B keys further
local B = (#KEYS - 5 - L - N - D) / 2
-- most adds one merged hash remembers: past it, it starts again
local MERGED_MAX = 1000

-- a meta that is not a hash (a corrupt record) would fail this add half-way, after its
-- jobs were stored and announced (a client retrying the failed add would add them again):
-- refused before anything is written (the caller names the key)
local meta_type = redis.call('TYPE', meta)['ok']
if meta_type ~= 'hash' and meta_type ~= 'none' then
  return redis.error_reply('WRONGTYPE the queue meta ' .. meta .. ' is a ' .. meta_type)
end

for i = 1, L do open_lane(meta, lanes, KEYS[5 + i], ARGV[5 + i], group) end

-- Debounce: job `kept` (hash `job`) takes an add when it has not started: delayed without
-- a past attempt, or waiting undelivered in its lane or in its group (a job that ran has
-- `started` or `att`, one reclaimed `stalls` or `ln`; a job of a flow, `par` or `kp`, is
-- never debounced: its id was reused by a flow after the kept job was deleted). It takes the
-- add's name and data (the field/value pairs ARGV[s .. e]) and is due `delay` ms from now:
-- delayed, it gets the new due time (now for no delay: the next claim promotes it); waiting,
-- it keeps its place for no delay, and otherwise leaves its lane or group for the delayed
-- set. Returns false when it cannot take the add; else true, its new due time (nil when it
-- stays waiting) and how many jobs left the waiting ones (0 or 1).
local function debounce(job, kept, s, e, delay, now)
  local f = redis.call('HMGET', job, 'state', 'sid', 'prio', 'grp', 'started', 'att', 'ln',
    'stalls', 'par', 'kp')
  for i = 5, 10 do
    if f[i] then return false end
  end
  local state, sid, grp = job_state(f[1], f[2]), f[2], f[4]
  local base = string.sub(job, 1, #job - #kept - 2)
  local lane = nil
  if state == 'waiting' and not (grp and sid == IN_GROUP) then
    if not valid_sid(sid) then return false end
    lane = base .. 'ready:' .. lane_name(nil, f[3])
    -- a delivered entry is an active job (or one a claim is about to drop)
    if not id_gt(sid, last_delivered(lane, group)) then return false end
  elseif state ~= 'waiting' and state ~= 'delayed' then
    return false
  end
  drop_pieces(job, 'data')
  hset_list(job, ARGV, s, e)
  if state == 'waiting' and delay == 0 then return true, nil, 0 end
  local due = now + delay
  on_index('ZADD', delayed, ms_text(due), kept)
  if state == 'delayed' then
    redis.call('HSET', job, 'due', ms_text(due))
    return true, due, 0
  end
  local left = 0
  if lane then
    left = on_index('XDEL', lane, sid)
  elseif group_unwait(group_keys(base .. 'j:'), kept, grp) then
    left = 1
  end
  redis.call('HSET', job, 'state', 'delayed', 'due', ms_text(due))
  redis.call('HDEL', job, 'sid')
  return true, due, left
end

local now = now_ms_ceil()
local now_text = ms_text(now)
local out = {}
local added, delayed_ids, debounced, first_due, left_waiting = {}, {}, {}, nil, 0
local G = nil
local a = 5 + L
-- the lean jobs added, by lane number: their entries
local lean_added, n_lean = {}, 0
for j = 0, N - 1 do
  local id = ARGV[a + 1]
  if id == '' then
    -- a lean job (prelude *Lean jobs*): its lane entry is all of it; the reply and its id
    -- are the entry's
    local lane, last = tonumber(ARGV[a + 2]), a + 3 + tonumber(ARGV[a + 3])
    local sid = on_index('XADD', KEYS[5 + lane], '*', unpack(ARGV, a + 4, last))
    out[j + 1] = sid
    local sids = lean_added[lane]
    if not sids then
      sids = {}
      lean_added[lane] = sids
    end
    sids[#sids + 1] = sid
    n_lean = n_lean + 1
    a = last
  else
    local lane = tonumber(ARGV[a + 3])
    local first, last = a + 9, a + 8 + tonumber(ARGV[a + 8])
    local delay = tonumber(ARGV[a + 2])
    local keyed = tonumber(ARGV[a + 5])
    local grp = ARGV[a + 7]
    local job = KEYS[5 + L + 1 + j]
    local holder, kept, merged = nil, nil, nil
    -- generated ids are unique by construction; only a given id needs the existence check
    local given = ARGV[a + 4] == '1'
    if given and redis.call('EXISTS', job) == 1 then
      holder = id
    elseif keyed > 0 then
      local key = KEYS[5 + L + N + keyed]
      merged = keyed > D and KEYS[5 + L + N + keyed + B]
      local took_already = given and merged and redis.pcall('HGET', merged, id)
      if type(took_already) == 'string' then
        -- applied already: the job that took it answers again, as a duplicate
        holder = '  ' .. took_already
      elseif keyed <= D then
        if not redis.call('SET', key, id, 'NX', 'PX', ARGV[a + 6]) then
          holder = redis.call('GET', key)
        end
      else
        kept = redis.call('GET', key)
        if kept then
          -- the name and data pairs follow the stamps
          local s = first + (delay > 0 and 6 or 4)
          local e = s + 1
          while e + 2 <= last and string.sub(ARGV[e + 1], 1, 4) == 'data' do e = e + 2 end
          local took, due, left = debounce(string.sub(job, 1, #job - #id) .. kept, kept, s, e,
            delay, now)
          if took then
            if due and (not first_due or due < first_due) then first_due = due end
            left_waiting = left_waiting + left
          else
            kept = nil
          end
        end
      end
    end
    if kept then
      -- the key lives `ttl` after the last add (extend), remembering the adds it took
      redis.call('SET', KEYS[5 + L + N + keyed], kept, 'PX', ARGV[a + 6])
      if given then
        -- (a merged hash of the wrong type, a corrupt record, or a full one starts again)
        local n = redis.pcall('HLEN', merged)
        if type(n) ~= 'number' or n >= MERGED_MAX then redis.call('DEL', merged) end
        redis.call('HSET', merged, id, kept)
      end
      redis.call('PEXPIRE', merged, ARGV[a + 6])
      debounced[#debounced + 1] = kept
      out[j + 1] = ' ' .. kept
    elseif holder then
      out[j + 1] = holder
    else
      if keyed > D then redis.call('SET', KEYS[5 + L + N + keyed], id, 'PX', ARGV[a + 6]) end
      if delay > 0 then
        local due = now + delay
        local due_text = ms_text(due)
        ARGV[first + 1], ARGV[first + 5] = now_text, due_text
        hset_list(job, ARGV, first, last)
        on_index('ZADD', delayed, due_text, id)
        if not first_due or due < first_due then first_due = due end
        delayed_ids[#delayed_ids + 1] = id
      elseif grp ~= '' then
        ARGV[first + 1], ARGV[first + 3] = now_text, IN_GROUP
        hset_list(job, ARGV, first, last)
        G = G or group_keys(string.sub(job, 1, #job - #id))
        group_enqueue(G, id, redis.call('HGET', job, 'prio'), grp, false)
        added[#added + 1] = id
      else
        -- waiting: no `state` field (see job_state in the prelude)
        local sid = on_index('XADD', KEYS[5 + lane], '*', 'i', id)
        ARGV[first + 1], ARGV[first + 3] = now_text, sid
        hset_list(job, ARGV, first, last)
        added[#added + 1] = id
      end
      out[j + 1] = ''
    end
    a = last
  end
end
if #added + n_lean - left_waiting ~= 0 then
  hincr(meta, 'waiting', #added + n_lean - left_waiting)
end
emit_ids(events, maxlen, 'added', added)
for lane, sids in pairs(lean_added) do emit_lean(events, maxlen, 'added', ARGV[5 + lane], sids) end
emit_ids(events, maxlen, 'delayed', delayed_ids)
emit_ids(events, maxlen, 'debounced', debounced)
if #added + n_lean > 0 then wake(marker, 0) end
if first_due then wake(marker, first_due) end
return out
