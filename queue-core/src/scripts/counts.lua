-- counts: an atomic snapshot of how many jobs are in each state, plus monotonic totals.
-- Waiting is the queue's counter of undelivered lane entries; active is what the lanes'
-- consumer group holds pending.
--
-- KEYS: 1 meta, 2 delayed, 3 completed, 4 failed, 5 waiting children, 6 cancelled,
--       7 .. lane streams
-- ARGV: 1 group, 2 lanes version the caller knows
-- Returns: {'lanes', version} when stale, else
--          {'ok', waiting, active, delayed, completed, failed, paused 0/1, completed_total,
--           failed_total, waiting_children, cancelled}
local meta = KEYS[1]
local ver = redis.call('HGET', meta, 'lanes_ver') or '0'
if ver ~= ARGV[2] then return {'lanes', ver} end
local active = 0
for i = 7, #KEYS do
  -- a lane without its group (deleted by hand) holds nothing active
  local p = redis.pcall('XPENDING', KEYS[i], ARGV[1])
  if type(p) == 'table' and not p.err then active = active + p[1] end
end
-- a set that is not a sorted set (a corrupt record) counts as empty, never fails the call
local function card(key)
  local n = redis.pcall('ZCARD', key)
  if type(n) == 'number' then return n end
  return 0
end
local m = redis.call('HMGET', meta, 'paused', 'completed_total', 'failed_total', 'waiting')
-- a corrupt counter reads as 0 (the next change of it starts it again: prelude hincr)
local function count(v)
  local n = tonumber(v or '0')
  if n and n == n and n > -1e15 and n < 1e15 then return math.floor(n) end
  return 0
end
return {'ok', count(m[4]), active, card(KEYS[2]), card(KEYS[3]), card(KEYS[4]),
  m[1] == '1' and 1 or 0, count(m[2]), count(m[3]), card(KEYS[5]), card(KEYS[6])}
