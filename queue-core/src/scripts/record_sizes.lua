-- record_sizes: what each of a batch of job records holds, for a read of many of them
-- (budget.rs) to ask a bounded number of bytes per round trip. Redis's own count of a job
-- hash's bytes (MEMORY USAGE ... SAMPLES 0), which walks every field of a hash not kept as
-- a listpack (30–90 ns a field here): so it is only asked of a hash of no more fields than a
-- job can have (MOST_JOB_FIELDS), and one call walks at most `budget` fields, answering
-- for the first ids only (at least one); the caller asks again for the rest.
--
-- KEYS: 1 the queue's meta (where the call runs; the job keys share its slot)
-- ARGV: 1 job key prefix, 2 fields one call may walk, 3 .. ids
-- Returns: per id answered for, in order, the bytes of its hash; 0 for a job gone or a key
--          that is not a hash (a corrupt record, which a read fails at once, saying so);
--          -n for a hash of n fields, more than a job has (a corrupt record not to be read)
local job_prefix, budget = ARGV[1], tonumber(ARGV[2])
local out, walked = {}, 0
for i = 3, #ARGV do
  if i > 3 and walked >= budget then break end
  local key = job_prefix .. ARGV[i]
  local size = 0
  if redis.call('TYPE', key)['ok'] == 'hash' then
    local fields = redis.call('HLEN', key)
    if fields > MOST_JOB_FIELDS then
      size = -fields
    else
      walked = walked + fields
      size = redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') or 0
    end
  end
  out[#out + 1] = size
end
return out
