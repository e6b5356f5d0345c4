-- add_job: store a batch of new jobs (one for `add`, a chunk for `add_bulk`).
-- Ready jobs get their id appended to their priority lane's stream, or wait in their group
-- (group_wait in the prelude); delayed jobs go to the delayed set. A job whose id is already stored is left untouched (idempotent add); a job
-- whose dedup key is still alive (throttle: the key lives `ttl` ms after the first add) is
-- dropped and the job holding the key is reported instead.
--
-- KEYS: 1 meta, 2 lanes, 3 delayed, 4 marker, 5 events,
--       6 .. 5+L lane streams, 6+L .. 5+L+N job hashes, then the dedup keys in use
-- ARGV: 1 L, 2 N, 3 group, 4 events maxlen, 5 .. 4+L lane priorities,
--       then per job 8 fields: id, delay ms, lane number (1..L; 0 for a grouped job), '1'
--       if the id was given by the user (only those can already exist), dedup key number
--       among the dedup KEYS (0 = none), dedup ttl ms, its group ('' none), F; then F hash
--       field/value arguments stored as they are
--       (name, data and opts in pieces, prio; cut by the caller, see job.rs `pieces`), the
--       first ones with empty values this script fills in: 'ts', '', 'sid', '' for a ready
--       job; 'ts', '', 'state', 'delayed', 'due', '' for a delayed one
-- Returns: per job '' (stored) or the id of the job it duplicates
local L = tonumber(ARGV[1])
local N = tonumber(ARGV[2])
local group, maxlen = ARGV[3], ARGV[4]
local meta, lanes, delayed, marker, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

for i = 1, L do open_lane(meta, lanes, KEYS[5 + i], ARGV[4 + i], group) end

local now = now_ms_ceil()
local now_text = ms_text(now)
local out = {}
local added, delayed_ids, first_due = {}, {}, nil
local G = nil
local a = 4 + L
for j = 0, N - 1 do
  local id, delay, lane = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local dedup = tonumber(ARGV[a + 5])
  local grp = ARGV[a + 7]
  local first, last = a + 9, a + 8 + tonumber(ARGV[a + 8])
  local job = KEYS[5 + L + 1 + j]
  local holder = nil
  if dedup > 0 then
    local key = KEYS[5 + L + N + dedup]
    if not redis.call('SET', key, id, 'NX', 'PX', ARGV[a + 6]) then
      holder = redis.call('GET', key)
    end
  end
  -- generated ids are unique by construction; only a given id needs the existence check
  if not holder and ARGV[a + 4] == '1' and redis.call('EXISTS', job) == 1 then holder = id end
  if holder then
    out[j + 1] = holder
  elseif delay > 0 then
    local due = now + delay
    local due_text = ms_text(due)
    ARGV[first + 1], ARGV[first + 5] = now_text, due_text
    hset_list(job, ARGV, first, last)
    redis.call('ZADD', delayed, due_text, id)
    if not first_due or due < first_due then first_due = due end
    delayed_ids[#delayed_ids + 1] = id
    out[j + 1] = ''
  elseif grp ~= '' then
    ARGV[first + 1], ARGV[first + 3] = now_text, IN_GROUP
    hset_list(job, ARGV, first, last)
    G = G or group_keys(string.sub(job, 1, #job - #id))
    group_enqueue(G, id, redis.call('HGET', job, 'prio'), grp, false)
    added[#added + 1] = id
    out[j + 1] = ''
  else
    -- waiting: no `state` field (see job_state in the prelude)
    local sid = redis.call('XADD', KEYS[5 + lane], '*', 'i', id)
    ARGV[first + 1], ARGV[first + 3] = now_text, sid
    hset_list(job, ARGV, first, last)
    added[#added + 1] = id
    out[j + 1] = ''
  end
  a = last
end
if #added > 0 then hincr(meta, 'waiting', #added) end
emit_ids(events, maxlen, 'added', added)
emit_ids(events, maxlen, 'delayed', delayed_ids)
if #added > 0 then wake(marker, 0) end
if first_due then wake(marker, first_due) end
return out
