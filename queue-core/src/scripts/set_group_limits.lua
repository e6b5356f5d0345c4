-- set_group_limits: set or clear one per-group limit (groups.rs), the queue's default or one
-- group's override, kept in the group limits hash and enforced by move_to_active. Parked
-- groups (the one named, or up to RELEASE_MAX of them for a default) return to the ring to
-- be judged by the new limits at their next turn, and the workers are woken.
--
-- KEYS: 1 group limits, 2 park, 3 marker, 4 events
-- ARGV: 1 kind ('c' concurrency, 'r' rate), 2 group ('' the default), 3 value ('' clears;
--       a concurrency, or '<max>/<window ms>'), 4 job key prefix, 5 events maxlen
-- Returns: 1
local limits, park, marker, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kind, grp, value, job_prefix, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local RELEASE_MAX = 1000
if kind ~= 'c' and kind ~= 'r' then
  return redis.error_reply('set_group_limits: unknown limit ' .. tostring(kind))
end
local G = group_keys(job_prefix)
local field = grp == '' and kind or (kind .. ':' .. grp)
if value == '' then
  redis.call('HDEL', limits, field)
else
  redis.call('HSET', limits, field, value)
end
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
local parked = grp ~= '' and {grp} or redis.call('ZRANGE', park, 0, RELEASE_MAX - 1)
for _, g in ipairs(parked) do
  if redis.call('ZREM', park, g) == 1 and redis.call('EXISTS', G.q .. g) == 1 then
    ring_add(G, g)
  end
end
wake(marker, 0)
emit(events, maxlen, 'event', 'limits')
return 1
