-- fail_or_retry: record a batch of attempts that did not complete. A failed job with
-- attempts left moves to the delayed set, due after its backoff; the others become failed
-- (kept per retention). A snoozed attempt (the handler asked to run again later) is due
-- again after its delay without counting as an attempt. A job with a cancel request
-- (cancel.lua: `cxl`), and an attempt its worker stopped for one, ends `cancelled`, never
-- retried. An attempt whose entry this worker no longer owns (reclaimed after its lease
-- ran out) is not recorded, and nor is one recorded already (the same batch sent again
-- after a dropped connection lost the reply).
--
-- A flow child that fails for good (or is cancelled) tells its parent through its queue's
-- outbox. A grouped job frees its place in its group's active count (a retry returns to
-- its group when due).
--
-- A lean job without a record (prelude *Lean jobs*) gets one first, from its entry: its
-- outcome is recorded as any other's (owned as in complete.lua).
--
-- KEYS: 1 meta, 2 delayed, 3 failed, 4 marker, 5 events, 6 per-minute failed list,
--       7 outbox, 8 .. 7+L lane streams
-- ARGV: 1 group, 2 events maxlen, 3 job key prefix, 4 N, 5 keep count (-1 none),
--       6 keep age ms (0 none), 7 trim budget, 8 '1' when the batch is sent again (a call
--       before failed: Redis may have run it),
--       then per job 12 fields: id, lane number, entry id, error, stack, retry delay ms
--       (-1 = no retry), how ('f' failed, 'c' stopped for a cancel request, 's' snoozed),
--       attempt number, start time ms, its flow parent '<queue>/<id>' ('' none), its
--       group ('' none), '1' for a lean job without a record when claimed
-- Returns: {retried, failed, lost id…}
local meta, delayed, failed, marker, events, per_minute, outbox =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local group, maxlen, job_prefix = ARGV[1], ARGV[2], ARGV[3]
local N, keep, age, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local now = now_ms_ceil()
local now_text = ms_text(now)
local by_lane, lost, times = {}, {}, {}
local retried, final = 0, 0
local G, ended = group_keys(job_prefix), {}
local C, cancelled_n = cancel_keys(job_prefix), 0
local first_due = nil
local again = ARGV[8] == '1'
local FIELDS = 12
-- lean jobs without a record, as complete.lua finds them
local lean, lean_owned, recorded_lean = {}, {}, {}
local lean_set = lean_records_key(job_prefix)
local lean_n = on_index('SCARD', lean_set)
for j = 0, N - 1 do
  local a = 8 + j * FIELDS
  local lane = tonumber(ARGV[a + 2]) + 7
  if ARGV[a + 12] == '1' then
    if lean_outcome(lean_set, lean_n, ARGV[a + 1], recorded_lean) then
      lean[j] = true
      -- (sent again: the others were recorded by the call that failed)
      lean_owned[j] = again and pending_entry(KEYS[lane], group, ARGV[a + 3])
    end
  end
  by_lane[lane] = by_lane[lane] or {}
  table.insert(by_lane[lane], ARGV[a + 3])
end
local all_owned = ack_all(by_lane, group)
for j = 0, N - 1 do
  local a = 8 + j * FIELDS
  local id, sid = ARGV[a + 1], ARGV[a + 3]
  local err, stack, delay, how = ARGV[a + 4], ARGV[a + 5], tonumber(ARGV[a + 6]), ARGV[a + 7]
  local att, started, par, grp = ARGV[a + 8], ARGV[a + 9], ARGV[a + 10], ARGV[a + 11]
  local lane = KEYS[tonumber(ARGV[a + 2]) + 7]
  local job = job_prefix .. id
  local own
  if all_owned then
    own = 'owned'
  elseif not lean[j] then
    own = ownership(job, sid)
  else
    own = lean_ownership(lane, sid, again, lean_owned[j])
  end
  if own == 'owned' and lean[j] then
    -- its record, from its entry (still there: acknowledged, not yet trimmed); a key of
    -- its id that is not a hash (a corrupt record) is left to the checks below
    local fields = lean_entry_fields(lane, id)
    -- (in slices: a field list too long to unpack must not fail the batch half-way, its
    -- entries acknowledged)
    for s = 1, fields and #fields or 0, SLICE do
      redis.pcall('HSET', job, unpack(fields, s, math.min(s + SLICE - 1, #fields)))
    end
    if not all_owned then lean_entry_done(meta, lane, group, sid) end
  end
  if own == 'owned' then count_ended(ended, grp) end
  local kind = own == 'owned' and redis.call('TYPE', job)['ok']
  if own == 'lost' then
    lost[#lost + 1] = id
  elseif kind and kind ~= 'hash' and kind ~= 'none' then
    -- its key is not a hash (a corrupt record): it takes no outcome, nor a retry; failed
    -- for good, listed among the failed, where it shows as unreadable
    emit(events, maxlen, 'event', 'failed', 'ids', id, 'error', err)
    on_index('ZADD', failed, now_text, id)
    final = final + 1
  -- (a job removed while it ran stays removed)
  elseif kind == 'hash' then
    local t0 = tonumber(started)
    if t0 then times[#times + 1] = now - t0 end
    if how == 'c' or redis.call('HGET', job, 'cxl') == sid then
      end_cancelled(job, id, C, now, sid, par)
      redis.call('HSET', job, 'att', att, 'started', started)
      emit(events, maxlen, 'event', 'cancelled', 'ids', id)
      cancelled_n = cancelled_n + 1
    elseif how == 's' then
      -- snoozed: this attempt does not count
      local due = now + delay
      redis.call('HSET', job, 'state', 'delayed', 'due', due,
        'att', math.max((tonumber(att) or 1) - 1, 0), 'started', started)
      on_index('ZADD', delayed, due, id)
      if not first_due or due < first_due then first_due = due end
      emit(events, maxlen, 'event', 'snoozed', 'ids', id, 'due', due)
      retried = retried + 1
    elseif delay >= 0 then
      local due = now + delay
      redis.call('HSET', job, 'state', 'delayed', 'due', due, 'error', err, 'stack', stack,
        'att', att, 'started', started)
      on_index('ZADD', delayed, due, id)
      if not first_due or due < first_due then first_due = due end
      emit(events, maxlen, 'event', 'retrying', 'ids', id, 'error', err, 'due', due)
      retried = retried + 1
    else
      emit(events, maxlen, 'event', 'failed', 'ids', id, 'error', err)
      if par ~= '' then notify_parent(outbox, id, par, 'f', err) end
      if keep == 0 then
        delete_job(job_prefix, id)
      else
        redis.call('HSET', job, 'state', 'failed', 'finished', now_text, 'error', err, 'stack', stack,
          'att', att, 'started', started)
        on_index('ZADD', failed, now_text, id)
      end
      final = final + 1
    end
  end
end
trim_acked(by_lane, group)
if final > 0 then
  hincr(meta, 'failed_total', final)
  bump_minute(meta, per_minute, 'f', now, final)
  trim_finished(failed, job_prefix, keep, age, now, budget)
  -- remembered for the janitor, which keeps applying it while no job finishes
  redis.call('HSET', meta, 'rf', keep .. ':' .. age)
end
if cancelled_n > 0 then trim_finished(C.set, job_prefix, keep, age, now, budget) end
observe_times(meta, times)
if groups_done(G, ended) then wake(marker, 0) end
if first_due then wake(marker, first_due) end
if #recorded_lean > 0 then redis.call('SREM', lean_set, unpack(recorded_lean)) end
local out = {retried, final}
for _, id in ipairs(lost) do out[#out + 1] = id end
return out
