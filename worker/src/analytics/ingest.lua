-- analytics.ingest: one batch of events, counted once. Checks the batch's marker, applies
-- the batch's aggregated writes, refreshes the expiry of every key written and sets the
-- marker, all atomically: a rerun of the same job (a lost reply, a reclaimed lease) finds
-- the marker and counts nothing.
--
-- KEYS: 1 batch marker, 2.. the day keys written (counts hashes, HyperLogLogs, top sets)
-- ARGV: 1 digest of the batch's events, 2 marker TTL s, 3 day-key TTL s, then ops:
--   'h' k field n       HINCRBY KEYS[k] field n
--   'p' k m e1 .. em    PFADD KEYS[k] e1 .. em   (m <= 1000, within unpack's limit)
--   'z' k member n      ZINCRBY KEYS[k] n member
-- Returns: 0 counted; 1 counted before (same digest); 2 the marker holds another digest
-- (the job id was reused for other events): nothing counted
local marker = KEYS[1]
local seen = redis.call('GET', marker)
if seen then
  if seen == ARGV[1] then return 1 end
  return 2
end
local i = 4
while i <= #ARGV do
  local op, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'h' then
    redis.call('HINCRBY', key, ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 'z' then
    redis.call('ZINCRBY', key, ARGV[i + 3], ARGV[i + 2])
    i = i + 4
  elseif op == 'p' then
    local m = tonumber(ARGV[i + 2])
    redis.call('PFADD', key, unpack(ARGV, i + 3, i + 2 + m))
    i = i + 3 + m
  else
    return redis.error_reply('analytics ingest: unknown op ' .. tostring(op))
  end
end
for k = 2, #KEYS do redis.call('EXPIRE', KEYS[k], ARGV[3]) end
redis.call('SET', marker, ARGV[1], 'EX', ARGV[2])
return 0
