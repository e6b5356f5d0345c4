-- retention: the janitor's pass. Applies the retention last used for completed and failed
-- jobs (remembered in the meta hash by complete / fail_or_retry; cancelled jobs are kept as
-- failed ones), so jobs past their age are removed even when no job finishes. At most
-- `budget` deletions per set per call.
--
-- KEYS: 1 meta, 2 completed, 3 failed, 4 cancelled
-- ARGV: 1 job key prefix, 2 budget
-- Returns: {completed removed, failed removed, cancelled removed}
local meta, completed, failed, cancelled = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local job_prefix, budget = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {}
for i, pair in ipairs({{'rc', completed}, {'rf', failed}, {'rf', cancelled}}) do
  local policy = redis.call('HGET', meta, pair[1])
  -- (a set of the wrong type, a corrupt record, is left alone: no call may stop at it)
  local before = redis.pcall('ZCARD', pair[2])
  if type(before) ~= 'number' then policy, before = nil, 0 end
  if policy then
    local keep, age = string.match(policy, '(-?%d+):(%d+)')
    trim_finished(pair[2], job_prefix, tonumber(keep), tonumber(age), now, budget)
  end
  out[i] = before > 0 and before - redis.call('ZCARD', pair[2]) or 0
end
return out
