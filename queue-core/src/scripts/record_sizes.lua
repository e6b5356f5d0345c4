-- record_sizes: what each of a batch of job records holds, for a read of many of them
-- (budget.rs) to ask a bounded number of bytes per round trip. Redis's own count of a job
-- hash's bytes (MEMORY USAGE ... SAMPLES 0, which walks every field: only called on a hash
-- of no more fields than a job can have, MOST_JOB_FIELDS, so the call stays short whatever
-- the record).
--
-- KEYS: 1 the queue's meta (where the call runs; the job keys share its slot)
-- ARGV: 1 job key prefix, 2 .. ids
-- Returns: per id, the bytes of its hash; 0 for a job gone or a key that is not a hash (a
--          corrupt record, which a read fails at once, saying so); -n for a hash of n
--          fields, more than a job has (a corrupt record not to be read)
local job_prefix = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local key = job_prefix .. ARGV[i]
  local size = 0
  if redis.call('TYPE', key)['ok'] == 'hash' then
    local fields = redis.call('HLEN', key)
    if fields > MOST_JOB_FIELDS then
      size = -fields
    else
      size = redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') or 0
    end
  end
  out[#out + 1] = size
end
return out
