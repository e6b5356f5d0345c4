-- move_to_active: a worker's fetch. First promotes due delayed jobs (a bounded batch), then
-- claims up to `count` ready jobs from the lanes, highest priority first, and returns them.
-- A claimed job is active by being pending in its lane's consumer group (the job hash is not
-- written here: attempts and start time are recorded when the attempt ends). The queue's
-- `waiting` counter tracks entries not yet delivered. All claims happen here, in one round
-- trip.
--
-- Queue limits (set_limits.lua) cut `count` down: a rate limit to what is left of the
-- current window (its counter is the limiter key, created with the window as TTL by the first
-- start of a window), a global concurrency to `conc` minus the entries pending in all lanes.
-- With no limit set they cost nothing beyond the one HMGET of the meta hash.
--
-- KEYS: 1 meta, 2 lanes, 3 delayed, 4 marker, 5 events, 6 rate limiter,
--       7 .. 6+L lane streams (priority desc)
-- ARGV: 1 group, 2 consumer, 3 count, 4 lanes version the caller knows, 5 events maxlen,
--       6 job key prefix, 7 promote batch size, 8 concurrency poll ms,
--       9 .. 8+L lane priorities (as KEYS)
-- Returns: {'lanes', version} when the caller's lane list is stale, else
--          {'ok', next_due or -1, paused 0/1, now ms, limited ms or -1, then per job 7
--           fields: id, lane number, entry id, name, data, opts, this attempt's number}
--          `limited` >= 1 when a queue limit allows no more starts now: ms until the rate
--          window resets, or the concurrency poll (capacity frees when any worker finishes)
local meta, lanes, delayed, marker, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local limiter = KEYS[6]
local group, consumer, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local maxlen, job_prefix, promote_max = ARGV[5], ARGV[6], tonumber(ARGV[7])
local conc_poll = tonumber(ARGV[8])
local L = #KEYS - 6

-- every meta field this call needs, in one read
local m = redis.call('HMGET', meta, 'lanes_ver', 'paused', 'rate_max', 'rate_ms', 'conc')
local ver = m[1] or '0'
if ver ~= ARGV[4] then return {'lanes', ver} end

local lane_of = {}
for i = 1, L do lane_of[ARGV[8 + i]] = i end

local now = now_ms()

-- promote due jobs into their lanes (all lanes checked before anything is written)
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, promote_max)
local prio_of = {}
for i, id in ipairs(due) do
  local f = redis.call('HMGET', job_prefix .. id, 'state', 'prio')
  if f[1] then
    local prio = f[2] or '0'
    if not lane_of[prio] then
      -- its lane vanished from the lanes set (keys deleted by hand): put it back and have
      -- the caller refresh; the next call gets the lane in KEYS (and recreates its group)
      redis.call('ZADD', lanes, prio, prio)
      return {'lanes', tostring(redis.call('HINCRBY', meta, 'lanes_ver', 1))}
    end
    prio_of[i] = prio
  end
end
local moved, promoted = {}, {}
for i, id in ipairs(due) do
  moved[#moved + 1] = id
  if prio_of[i] then
    local job = job_prefix .. id
    local sid = redis.call('XADD', KEYS[6 + lane_of[prio_of[i]]], '*', 'i', id)
    set_waiting(job, sid, 'due')
    promoted[#promoted + 1] = id
  end
end
if #moved > 0 then redis.call('ZREM', delayed, unpack(moved)) end
if #promoted > 0 then redis.call('HINCRBY', meta, 'waiting', #promoted) end
emit_ids(events, maxlen, 'waiting', promoted)

local next_due = -1
if #due == promote_max then
  next_due = now
else
  local head = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if #head > 0 then next_due = tonumber(head[2]) end
end

if m[2] == '1' then
  return {'ok', next_due, 1, now, -1}
end

-- queue limits: how many of `want` may start now
local want = count
local rate_max, conc = tonumber(m[3]), tonumber(m[5])
local used, active = 0, 0
if rate_max then
  used = tonumber(redis.call('GET', limiter) or '0')
  count = math.min(count, rate_max - used)
end
if conc then
  for lane = 1, L do
    local p = redis.pcall('XPENDING', KEYS[6 + lane], group)
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
      wait = tonumber(m[4]) or 1000
      redis.call('PEXPIRE', limiter, wait)
    end
    wait = math.max(wait, 1)
  end
  if conc and active + got >= conc then wait = math.max(wait, conc_poll) end
  return wait
end
if count <= 0 then
  return {'ok', next_due, 0, now, limited(0)}
end

local out = {'ok', next_due, 0, now, -1}
local got, started, delivered = 0, {}, 0
for lane = 1, L do
  if got >= count then break end
  local key = KEYS[6 + lane]
  local res = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - got,
    'STREAMS', key, '>')
  if type(res) == 'table' and res.err then
    if not string.find(res.err, 'NOGROUP') then return redis.error_reply(res.err) end
    -- the lane's stream or group was deleted by hand: recreate the group and read again
    redis.call('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
    res = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - got,
      'STREAMS', key, '>')
  end
  if res then
    local stale = {}
    delivered = delivered + #res[1][2]
    for _, entry in ipairs(res[1][2]) do
      local sid, id = entry[1], entry[2][2]
      local job = job_prefix .. id
      -- data up to 3 pieces (192 bytes) comes in this one read
      local f = redis.call('HMGET', job, 'name', 'data', 'opts', 'att', 'data:n', 'opts:n',
        'data:2', 'data:3')
      if not f[1] then
        -- removed while waiting: drop the orphan entry
        stale[#stale + 1] = sid
      else
        local att = tonumber(f[4] or '0') + 1
        started[#started + 1] = id
        out[#out + 1] = id
        out[#out + 1] = lane
        out[#out + 1] = sid
        out[#out + 1] = f[1]
        out[#out + 1] = long_value(job, 'data', f[2], f[5], {f[7], f[8]})
        out[#out + 1] = long_value(job, 'opts', f[3] or '', f[6], {})
        out[#out + 1] = att
        got = got + 1
      end
    end
    if #stale > 0 then
      redis.call('XACK', key, group, unpack(stale))
      redis.call('XDEL', key, unpack(stale))
    end
  end
end
if delivered > 0 then redis.call('HINCRBY', meta, 'waiting', -delivered) end
emit_ids(events, maxlen, 'active', started)
if rate_max and got > 0 then
  if used == 0 then
    -- the first start of a window opens it
    redis.call('SET', limiter, got, 'PX', tonumber(m[4]) or 1000)
  else
    redis.call('INCRBY', limiter, got)
  end
end
if rate_max or conc then
  out[5] = limited(got)
  if out[5] >= 0 then return out end
end
-- a full batch may leave more behind: let another blocked worker look too
if got >= want then wake(marker, 0) end
return out
