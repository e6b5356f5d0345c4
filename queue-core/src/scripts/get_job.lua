-- get_job: read one job: its hash, its log, and whether it is active right now (a waiting
-- job whose lane entry is pending in the consumer group is held by a worker, the consumer
-- the entry is pending to). Atomic for a job of ordinary size. A hash or a log of more than
-- INLINE_BYTES (a job at large caps, or a corrupt record) is not read here: copying it
-- through Lua took ~200 ms for 60 MB, every client waiting; the caller reads it with plain
-- reads right after (get_job.rs), a bounded number of bytes per call.
--
-- A lean job without a record (prelude *Lean jobs*) has no hash: its lane entry is read
-- instead, the lane and entry its id names (KEYS[4], ARGV 4 and 5), and it is shown as its
-- hash would show it (prelude lean_fields) while the entry is live.
--
-- KEYS: 1 job hash, 2 job logs, 3 meta, 4 the lane a lean id names (for another id, the
--       meta again: never read), 5 .. lane streams (priority desc, as ARGV 6 ..)
-- ARGV: 1 group, 2 lanes version the caller knows, 3 most log lines, 4 a lean id's lane
--       priority ('' for another id), 5 its entry id, 6 .. lane priorities
-- Returns: {'lanes', version} when stale, {'none'} when missing, {'unreadable', why, the
--          state whose set lists it ('' none)} when the job's key is not a hash or holds
--          more fields than a job has (a corrupt record), else
--          {'ok', active 0/1, paused 0/1, idle ms or -1, consumer or '', now ms, logs note
--           ('' or why the log cannot be read), log lines to read after (0: none, -1: the
--           log read here), the log's bytes (when read after), the entry `sid` the job was
--           found active or waiting on ('' none), #fields*2 (-1: the hash to read after),
--           field, value, …, log lines…}
local INLINE_BYTES = 1048576
local ver = redis.call('HGET', KEYS[3], 'lanes_ver') or '0'
if ver ~= ARGV[2] then return {'lanes', ver} end
-- (a hash of more fields than a job has, a corrupt record, is not read: that could take
-- as long as it likes)
local fields = redis.pcall('HLEN', KEYS[1])
-- the finished or delayed state whose set lists a job whose record cannot be read
local function listed_in()
  local base, id = string.sub(KEYS[3], 1, -5), string.sub(KEYS[1], #KEYS[3] - 1)
  for _, state in ipairs({'failed', 'cancelled', 'completed', 'delayed'}) do
    if type(redis.pcall('ZSCORE', base .. state, id)) == 'string' then return state end
  end
  return ''
end
if type(fields) == 'number' and fields > MOST_JOB_FIELDS then
  return {'unreadable', 'its record has ' .. fields .. ' fields, more than any job has: not read',
    listed_in()}
end
if type(fields) ~= 'number' then
  return {'unreadable', 'its record ' .. wrong_type(KEYS[1], 'hash'), listed_in()}
end

-- The lean job in entry `sid` of lane `lane` (priority `prio`), which has no hash: the
-- fields add_job would have written for it, and its entry's XPENDING line while pending
-- (active; nil while waiting). Nil when the entry is not a live lean job's: gone, another
-- job's entry, or delivered and acknowledged (a finished job's, left until the lane is
-- trimmed), which must never be shown as a job.
local function lean_job(lane, prio, sid, group)
  local f = lean_entry(lane, sid)
  if not f then return nil end
  local p = redis.pcall('XPENDING', lane, group, sid, sid, 1)
  if type(p) == 'table' and not p.err and p[1] then return lean_fields(prio, sid, f), p[1] end
  if id_gt(sid, last_delivered(lane, group)) then return lean_fields(prio, sid, f), nil end
  return nil
end

local lean_h, lean_p
if fields == 0 then
  if ARGV[4] ~= '' then lean_h, lean_p = lean_job(KEYS[4], ARGV[4], ARGV[5], ARGV[1]) end
  if not lean_h then return {'none'} end
end
-- (walks the fields, at most MOST_JOB_FIELDS of them; a lean job's are at most ~4 KiB)
local inline = lean_h ~= nil or
  (redis.call('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', '0') or 0) <= INLINE_BYTES
local h = lean_h or (inline and redis.call('HGETALL', KEYS[1]) or {})
-- the fields that say where the job is (a value too long to be one, a corrupt record, is
-- left to the caller's read to report)
local at = {state = false, sid = false, prio = false, ln = false}
if inline then
  for i = 1, #h, 2 do
    if at[h[i]] == false then at[h[i]] = h[i + 1] end
  end
else
  for name in pairs(at) do
    if redis.call('HSTRLEN', KEYS[1], name) <= 256 then
      at[name] = redis.call('HGET', KEYS[1], name)
    end
  end
end
local state, sid, prio, ln = at.state or nil, at.sid or nil, at.prio or nil, at.ln or nil
local lane = lane_name(ln, prio)
state = job_state(state, sid)
local active, idle, consumer = 0, -1, ''
if lean_p then
  -- (its lane was read already: the lanes set need not list it)
  active = 1; consumer = lean_p[2]; idle = lean_p[3]
elseif state == 'waiting' and valid_sid(sid) and not lean_h then
  for i = 5, #KEYS do
    if ARGV[i + 1] == lane then
      local p = redis.call('XPENDING', KEYS[i], ARGV[1], sid, sid, 1)
      if #p > 0 then active = 1; consumer = p[1][2]; idle = p[1][3] end
    end
  end
end
local paused = redis.call('HGET', KEYS[3], 'paused') == '1' and 1 or 0
-- (a log key of the wrong type, a corrupt record, is reported, not fatal; so is a log of
-- more lines than one keeps, of which the newest are read)
local max_lines = tonumber(ARGV[3])
local lines = redis.pcall('LLEN', KEYS[2])
local logs, logs_note, later, log_bytes = {}, '', -1, 0
if type(lines) ~= 'number' then
  logs_note = 'its log ' .. wrong_type(KEYS[2], 'list')
else
  if lines > max_lines then
    logs_note = 'its log has ' .. lines .. ' lines, more than the ' .. max_lines ..
      ' kept: the newest are shown'
  end
  local first = math.max(lines - max_lines, 0)
  log_bytes = lines > 0 and redis.call('MEMORY', 'USAGE', KEYS[2], 'SAMPLES', '0') or 0
  if lines == 0 or log_bytes > INLINE_BYTES then
    later = lines - first
  else
    logs = redis.call('LRANGE', KEYS[2], first, -1)
  end
end
local out = {'ok', active, paused, idle, consumer, now_ms(), logs_note, later, log_bytes,
  sid or '', inline and #h or -1}
for _, v in ipairs(h) do out[#out + 1] = v end
for _, line in ipairs(logs) do out[#out + 1] = line end
return out
