-- set_group_limits: set or clear one per-group limit (groups.rs), the queue's default or one
-- group's override, kept in the group limits hash and enforced by move_to_active. A group
-- whose override changed returns to the ring, to be judged by its new limits at its next
-- turn. A loosened default (raised, cleared, a shorter window) does the same for up to
-- RELEASE_MAX parked groups per call: the caller calls again, kind 'release', while a call
-- releases that many. A tightened one releases none: the claim parks groups over it at
-- their turns. The workers are woken.
--
-- KEYS: 1 group limits, 2 park, 3 marker, 4 events
-- ARGV: 1 kind ('c' concurrency, 'r' rate, 'release' the next parked groups), 2 group (''
--       the default), 3 value ('' clears; a concurrency, or '<max>/<window ms>'), 4 job key
--       prefix, 5 events maxlen
-- Returns: how many parked groups were released
local limits, park, marker, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kind, grp, value, job_prefix, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local RELEASE_MAX = 1000
local G = group_keys(job_prefix)
group_keys_sane(G)

local function release(groups)
  local n = 0
  for _, g in ipairs(groups) do
    if group_unpark(G, g) then n = n + 1 end
  end
  if n > 0 then wake(marker, 0) end
  return n
end

if kind == 'release' then
  return release(redis.call('ZRANGE', park, 0, RELEASE_MAX - 1))
end
if kind ~= 'c' and kind ~= 'r' then
  return redis.error_reply('set_group_limits: unknown limit ' .. tostring(kind))
end
local field = grp == '' and kind or (kind .. ':' .. grp)
-- (a limits key that is not a hash, a corrupt record, is replaced)
if redis.call('TYPE', limits)['ok'] ~= 'hash' then redis.call('DEL', limits) end
local old = redis.call('HGET', limits, field)
if value == '' then
  redis.call('HDEL', limits, field)
else
  redis.call('HSET', limits, field, value)
end
emit(events, maxlen, 'event', 'limits')
if kind == 'r' and grp ~= '' then
  local rate = G.rate .. grp
  local ms = tonumber(string.match(value, '/(%d+)$'))
  -- a window in progress never outlasts the new one; a cleared limit starts afresh
  if not ms then
    redis.call('DEL', rate)
  else
    local ttl = redis.call('PTTL', rate)
    if ttl == -1 or ttl > ms then redis.call('PEXPIRE', rate, ms) end
  end
end
if grp ~= '' then return release({grp}) end
local loosened = false
if old then
  if value == '' then
    loosened = true
  elseif kind == 'c' then
    loosened = (tonumber(value) or 0) > (tonumber(old) or 0)
  else
    local om, oms = string.match(old, '^(%d+)/(%d+)$')
    local nm, nms = string.match(value, '^(%d+)/(%d+)$')
    loosened = not om or tonumber(nm) > tonumber(om) or tonumber(nms) < tonumber(oms)
  end
end
if not loosened then return 0 end
return release(redis.call('ZRANGE', park, 0, RELEASE_MAX - 1))
