-- get_job: read one job atomically: its hash, its log, and whether it is active right now
-- (a waiting job whose lane entry is pending in the consumer group is held by a worker,
-- the consumer the entry is pending to).
--
-- KEYS: 1 job hash, 2 job logs, 3 meta, 4 .. lane streams (priority desc, as ARGV)
-- ARGV: 1 group, 2 lanes version the caller knows, 3 .. lane priorities
-- Returns: {'lanes', version} when stale, {'none'} when missing, {'unreadable', why} when
--          the job's key is not a hash or holds more fields than a job has (a corrupt
--          record), else
--          {'ok', active 0/1, paused 0/1, idle ms or -1, consumer or '', now ms, logs note
--           ('' or why the log cannot be read), #fields*2, field, value, …, log lines…}
local ver = redis.call('HGET', KEYS[3], 'lanes_ver') or '0'
if ver ~= ARGV[2] then return {'lanes', ver} end
-- (a hash of more fields than a job has, a corrupt record, is not read: that could take
-- as long as it likes)
local fields = redis.pcall('HLEN', KEYS[1])
if type(fields) == 'number' and fields > MOST_JOB_FIELDS then
  return {'unreadable', 'its record has ' .. fields .. ' fields, more than any job has: not read'}
end
local h = redis.pcall('HGETALL', KEYS[1])
if type(h) == 'table' and h.err then
  return {'unreadable', 'its record ' .. wrong_type(KEYS[1], 'hash')}
end
if #h == 0 then return {'none'} end
local state, sid, prio, ln = nil, nil, nil, nil
for i = 1, #h, 2 do
  if h[i] == 'state' then state = h[i + 1]
  elseif h[i] == 'sid' then sid = h[i + 1]
  elseif h[i] == 'prio' then prio = h[i + 1]
  elseif h[i] == 'ln' then ln = h[i + 1] end
end
local lane = lane_name(ln, prio)
state = job_state(state, sid)
local active, idle, consumer = 0, -1, ''
if state == 'waiting' and valid_sid(sid) then
  for i = 4, #KEYS do
    if ARGV[i - 1] == lane then
      local p = redis.call('XPENDING', KEYS[i], ARGV[1], sid, sid, 1)
      if #p > 0 then active = 1; consumer = p[1][2]; idle = p[1][3] end
    end
  end
end
local paused = redis.call('HGET', KEYS[3], 'paused') == '1' and 1 or 0
-- (a log key of the wrong type, a corrupt record, is reported, not fatal)
local logs = redis.pcall('LRANGE', KEYS[2], 0, -1)
local logs_note = ''
if logs.err then
  logs_note = 'its log ' .. wrong_type(KEYS[2], 'list')
  logs = {}
end
local out = {'ok', active, paused, idle, consumer, now_ms(), logs_note, #h}
for _, v in ipairs(h) do out[#out + 1] = v end
for _, line in ipairs(logs) do out[#out + 1] = line end
return out
