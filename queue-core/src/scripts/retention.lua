-- retention: the janitor's pass. Applies the retention last used for completed and failed
-- jobs (remembered in the meta hash by complete / fail_or_retry), so jobs past their age
-- are removed even when no job finishes. At most `budget` deletions per set per call.
--
-- KEYS: 1 meta, 2 completed, 3 failed
-- ARGV: 1 job key prefix, 2 budget
-- Returns: {completed removed, failed removed}
local meta, completed, failed = KEYS[1], KEYS[2], KEYS[3]
local job_prefix, budget = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {}
for i, pair in ipairs({{'rc', completed}, {'rf', failed}}) do
  local policy = redis.call('HGET', meta, pair[1])
  local before = redis.call('ZCARD', pair[2])
  if policy then
    local keep, age = string.match(policy, '(-?%d+):(%d+)')
    trim_finished(pair[2], job_prefix, tonumber(keep), tonumber(age), now, budget)
  end
  out[i] = before - redis.call('ZCARD', pair[2])
end
return out
