-- claim_entries: the second step of a fast claim (claim_fast.lua), for the entries it read
-- that are not lean jobs without a record: each is claimed as move_to_active claims it
-- (prelude *Claims of jobs with a record*): its job's record read and checked, or the
-- entry, an orphan, acknowledged and deleted. The entries are pending to this worker
-- already, and the fast claim counted them out of `waiting`. (The fast claim's lean jobs
-- need no script: the worker writes their `active` events, claim_fast.rs `announce`.)
--
-- KEYS: 1 events, 2 failed, 3 per-minute failed list, 4 meta, 5 the lane read
-- ARGV: 1 group, 2 events maxlen, 3 job key prefix, 4 data cap bytes, 5 opts cap bytes,
--       then per entry: its entry id and its job id ('' none)
-- Returns: per job claimed the 10 fields of move_to_active's reply (lane number 1: the
--          call's one lane)
local events, failed, per_minute, meta, lane = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, maxlen, job_prefix = ARGV[1], ARGV[2], ARGV[3]
local data_cap, opts_cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local FIRST = 6
local now = now_ms()
local late_failed, stale, out, o = {}, {}, {}, 0
-- (the fast claim found no lean job with a record: none runs from one of these entries)
local claims = stored_claims(job_prefix, failed, now, data_cap, opts_cap, 0, late_failed)
for i = FIRST, #ARGV - 1, 2 do
  local sid, id = ARGV[i], ARGV[i + 1]
  local next_o = claims.take(1, sid, id ~= '' and id or nil, nil, out, o)
  if next_o then o = next_o else stale[#stale + 1] = sid end
end
drop_orphans(lane, group, stale)
emit_ids(events, maxlen, 'active', claims.started)
count_failed_unrun(meta, per_minute, events, maxlen, now, late_failed)
return out
