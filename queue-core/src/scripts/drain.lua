-- drain: delete up to `limit` jobs that have not started — delayed ones first, then lane
-- entries not yet delivered (with their jobs). Running jobs are left alone. One bounded batch;
-- the caller loops until it returns 0.
--
-- KEYS: 1 meta, 2 delayed, 3 events, 4 .. lane streams
-- ARGV: 1 group, 2 limit, 3 job key prefix, 4 events maxlen
-- Returns: number of jobs deleted
local meta, delayed, events = KEYS[1], KEYS[2], KEYS[3]
local group, limit, job_prefix, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local n = 0
local ids = redis.call('ZRANGE', delayed, 0, limit - 1)
if #ids > 0 then
  redis.call('ZREM', delayed, unpack(ids))
  delete_jobs(job_prefix, ids, 1, #ids, 1)
  n = #ids
end
for k = 4, #KEYS do
  if n >= limit then break end
  local last = last_delivered(KEYS[k], group)
  local entries = redis.call('XRANGE', KEYS[k], '(' .. last, '+', 'COUNT', limit - n)
  if #entries > 0 then
    local sids = {}
    for _, e in ipairs(entries) do
      sids[#sids + 1] = e[1]
      delete_job(job_prefix, e[2][2])
    end
    redis.call('XDEL', KEYS[k], unpack(sids))
    redis.call('HINCRBY', meta, 'waiting', -#entries)
    n = n + #entries
  end
end
if n > 0 then emit(events, maxlen, 'event', 'drained', 'count', n) end
return n
