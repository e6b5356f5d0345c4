-- add_job: store a batch of new jobs (one for `add`, a chunk for `add_bulk`).
-- Ready jobs get their id appended to their priority lane's stream; delayed jobs go to the
-- delayed set. A job whose id is already stored is left untouched (idempotent add); a job
-- whose dedup key is still alive (throttle: the key lives `ttl` ms after the first add) is
-- dropped and the job holding the key is reported instead.
--
-- KEYS: 1 meta, 2 lanes, 3 delayed, 4 marker, 5 events,
--       6 .. 5+L lane streams, 6+L .. 5+L+N job hashes, then the dedup keys in use
-- ARGV: 1 L, 2 N, 3 group, 4 events maxlen, 5 .. 4+L lane priorities,
--       then per job 9 fields: id, name, data, opts, delay ms, lane number (1..L),
--       '1' if the id was given by the user (only those can already exist),
--       dedup key number among the dedup KEYS (0 = none), dedup ttl ms
-- Returns: per job '' (stored) or the id of the job it duplicates
local L = tonumber(ARGV[1])
local N = tonumber(ARGV[2])
local group, maxlen = ARGV[3], ARGV[4]
local meta, lanes, delayed, marker, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

for i = 1, L do
  local prio = ARGV[4 + i]
  if not redis.call('ZSCORE', lanes, prio) then
    -- the group may already exist if only the lanes set was lost; that is fine
    pcall(redis.call, 'XGROUP', 'CREATE', KEYS[5 + i], group, '0', 'MKSTREAM')
    redis.call('ZADD', lanes, prio, prio)
    redis.call('HINCRBY', meta, 'lanes_ver', 1)
  end
end

local now = now_ms_ceil()
local now_text = ms_text(now)
local out = {}
local added, delayed_ids, first_due = {}, {}, nil
local base = 4 + L
for j = 0, N - 1 do
  local a = base + j * 9
  local id, name, data, opts = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local delay, lane = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local dedup = tonumber(ARGV[a + 8])
  local job = KEYS[5 + L + 1 + j]
  local holder = nil
  if dedup > 0 then
    local key = KEYS[5 + L + N + dedup]
    if not redis.call('SET', key, id, 'NX', 'PX', ARGV[a + 9]) then
      holder = redis.call('GET', key)
    end
  end
  -- generated ids are unique by construction; only a given id needs the existence check
  if not holder and ARGV[a + 7] == '1' and redis.call('EXISTS', job) == 1 then holder = id end
  if holder then
    out[j + 1] = holder
  else
    local fields = {'name', name, 'ts', now_text}
    add_long(fields, 'data', data)
    if opts ~= '' then add_long(fields, 'opts', opts) end
    local prio = ARGV[4 + lane]
    if prio ~= '0' then fields[#fields + 1] = 'prio'; fields[#fields + 1] = prio end
    if delay > 0 then
      local due = now + delay
      local due_text = ms_text(due)
      fields[#fields + 1] = 'state'; fields[#fields + 1] = 'delayed'
      fields[#fields + 1] = 'due'; fields[#fields + 1] = due_text
      redis.call('HSET', job, unpack(fields))
      redis.call('ZADD', delayed, due_text, id)
      if not first_due or due < first_due then first_due = due end
      delayed_ids[#delayed_ids + 1] = id
    else
      local sid = redis.call('XADD', KEYS[5 + lane], '*', 'i', id)
      fields[#fields + 1] = 'sid'; fields[#fields + 1] = sid
      redis.call('HSET', job, unpack(fields))
      added[#added + 1] = id
    end
    out[j + 1] = ''
  end
end
if #added > 0 then redis.call('HINCRBY', meta, 'waiting', #added) end
emit_ids(events, maxlen, 'added', added)
emit_ids(events, maxlen, 'delayed', delayed_ids)
if #added > 0 then wake(marker, 0) end
if first_due then wake(marker, first_due) end
return out
