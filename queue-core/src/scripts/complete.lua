-- complete: record a batch of successful attempts. Acks their lane entries, stores results,
-- counts them, and keeps the completed set within its retention. An attempt whose entry this
-- worker no longer owns (reclaimed after its lease ran out) is not recorded, and nor is one
-- recorded already (the same batch sent again after a dropped connection lost the reply).
--
-- A flow child's result also goes to its queue's outbox, for its parent. A grouped job
-- frees its place in its group's active count.
--
-- A lean job without a record (prelude *Lean jobs*) costs no hash read: its entry was
-- pending, so it is this worker's (whoever takes a lean job from its worker, a reclaim or
-- an operator, gives it a record first, which the set of lean records shows). Kept, it
-- gets its record now, its fields laid out by the worker (building them here costs more
-- than all the call's Redis commands); removed at once, nothing is left to delete. Its
-- record leaves out what its id says (prelude *Lean jobs*): `ts`, and `att` (1).
--
-- KEYS: 1 meta, 2 completed, 3 events, 4 per-minute completed list, 5 outbox,
--       6 .. 5+L lane streams
-- ARGV: 1 group, 2 events maxlen, 3 job key prefix, 4 N, 5 keep count (-1 none),
--       6 keep age ms (0 none), 7 trim budget, 8 '1' when the batch is sent again (a call
--       before failed: Redis may have run it), 9 the jobs, one MessagePack array (packed.rs:
--       each argument costs Redis time to take in, parsed and then made a Lua string; the
--       lane numbers and F are numbers), per job: 'R', id, lane number, entry id, result
--       JSON, attempt number, start time ms, its flow parent '<queue>/<id>' ('' none), its
--       group ('' none); or for a lean job without a record when claimed (its first
--       attempt): 'L', id, lane number, entry id, result JSON, start time ms, F, then F
--       values of its record (none when it is not kept): its `name` and `data` (the first
--       piece) values, then the field/value pairs of the rest as add_job would store them
--       (sent without the names the script knows, and without `sid`, its entry id)
-- Returns: the ids of jobs not recorded because this worker lost them
local meta, completed, events, per_minute, outbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, maxlen, job_prefix = ARGV[1], ARGV[2], ARGV[3]
local N, keep, age, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local again = ARGV[8] == '1'
-- rounded up, as add and claim times are: an attempt never finishes "before" it started
local now = now_ms_ceil()
local now_text = ms_text(now)
local by_lane, zargs, done, lost, times = {}, {}, {}, {}, {}
local recorded, nd, nt = 0, 0, 0
local G, ended = group_keys(job_prefix), {}
-- where each job's arguments start; lean jobs without a record (`lean[j]`), and, sent
-- again, which of those were still pending (the others were recorded by the call that
-- failed)
local at, lean, lean_owned, recorded_lean = {}, {}, {}, {}
local lean_set = lean_records_key(job_prefix)
local lean_n = on_index('SCARD', lean_set)
-- (packed: the per-job loops read a local table, with numbers where they count)
local argv = cmsgpack.unpack(ARGV[9])
local a = 0
for j = 1, N do
  at[j] = a
  local lane, sid = argv[a + 3] + 5, argv[a + 4]
  if argv[a + 1] == 'L' then
    if lean_outcome(lean_set, lean_n, argv[a + 2], recorded_lean) then
      lean[j] = true
      -- (sent again: the others were recorded by the call that failed)
      lean_owned[j] = again and pending_entry(KEYS[lane], group, sid)
    end
    a = a + 7 + argv[a + 7]
  else
    a = a + 9
  end
  local acks = by_lane[lane] or {}
  by_lane[lane] = acks
  acks[#acks + 1] = sid
end
local all_owned = ack_all(by_lane, group)
for j = 1, N do
  local a = at[j]
  local lean_job = argv[a + 1] == 'L'
  local id, sid, result = argv[a + 2], argv[a + 4], argv[a + 5]
  local att, started, par, grp = '1', argv[a + 6], '', ''
  if not lean_job then att, started, par, grp = argv[a + 6], argv[a + 7], argv[a + 8], argv[a + 9] end
  -- (a job deleted by its retention in the batch's one call needs no key of its own here)
  local job = (keep ~= 0 or not all_owned) and job_prefix .. id
  local own
  if all_owned then
    own = 'owned'
  elseif not lean[j] then
    own = ownership(job, sid)
  else
    local lane = KEYS[argv[a + 3] + 5]
    own = lean_ownership(lane, sid, again, lean_owned[j])
    if own == 'owned' then lean_entry_done(meta, lane, group, sid) end
  end
  if own == 'lost' then
    lost[#lost + 1] = id
  elseif own == 'owned' then
    recorded = recorded + 1
    count_ended(ended, grp)
    if par ~= '' then notify_parent(outbox, id, par, 'c', result) end
    local t0 = tonumber(started)
    if t0 then
      nt = nt + 1
      times[nt] = now - t0
    end
    if lean[j] then
      nd = nd + 1
      done[nd] = id
      -- kept: its record, with the outcome (a key of its id that is not a hash, a corrupt
      -- record, takes none: listed among the completed, where it shows as unreadable);
      -- removed: nothing was stored but its entry
      if keep ~= 0 then
        -- (`sid`: a lease renewal racing the outcome tells by it that its job was recorded,
        -- extend_lease.lua; no `ts` nor `att`: its id says them, and each field costs the
        -- write ~0.15 µs)
        redis.pcall('HSET', job, 'state', 'completed', 'finished', now_text, 'started',
          started, 'result', result, 'sid', sid, 'name', argv[a + 8], 'data', argv[a + 9],
          unpack(argv, a + 10, a + 7 + argv[a + 7]))
        zargs[#zargs + 1] = now_text
        zargs[#zargs + 1] = id
      end
    else
      local written = keep ~= 0 and redis.pcall('HSET', job, 'state', 'completed',
        'finished', now_text, 'started', started, 'att', att, 'result', result, 'sid', sid)
      if keep == 0 and all_owned then
        -- deleted below, all in one call: each job's entry was still pending, so its hash
        -- was there when it was claimed and nothing but a hand-made deletion can have taken
        -- it
        nd = nd + 1
        done[nd] = id
      elseif keep == 0 then
        if delete_job(job_prefix, id) > 0 then
          nd = nd + 1
          done[nd] = id
        end
      elseif written == 6 and redis.call('HEXISTS', job, 'name') == 0 then
        -- all six fields were new (an owned job has `sid`) and there is no name: the job
        -- was removed while it ran; do not resurrect it. (A job whose `sid` alone was lost
        -- to a corrupt record keeps its name, and its outcome.)
        delete_job(job_prefix, id)
      else
        -- (a key that is not a hash, a corrupt record, takes no outcome: the job is only
        -- listed among the completed, where it shows as unreadable)
        zargs[#zargs + 1] = now_text
        zargs[#zargs + 1] = id
        nd = nd + 1
        done[nd] = id
      end
    end
  end
end
if keep == 0 and all_owned then
  if not next(lean) then
    delete_jobs(job_prefix, done, 1, nd, 1)
  else
    -- (the lean ones have nothing to delete)
    local stored = {}
    for j = 1, N do
      if not lean[j] then stored[#stored + 1] = argv[at[j] + 2] end
    end
    delete_jobs(job_prefix, stored, 1, #stored, 1)
  end
end
if #recorded_lean > 0 then redis.call('SREM', lean_set, unpack(recorded_lean)) end
trim_acked(by_lane, group)
emit_ids(events, maxlen, 'completed', done)
if #zargs > 0 then on_index('ZADD', completed, unpack(zargs)) end
if recorded > 0 then
  hincr(meta, 'completed_total', recorded)
  bump_minute(meta, per_minute, 'c', now, recorded)
  observe_times(meta, times)
end
trim_finished(completed, job_prefix, keep, age, now, budget)
-- remembered for the janitor, which keeps applying it while no job finishes (only when one
-- did: a batch whose jobs all went, with their queue obliterated, must not bring back its
-- meta, a queue no listing shows)
if recorded > 0 then redis.call('HSET', meta, 'rc', keep .. ':' .. age) end
if groups_done(G, ended) then wake(G.marker, 0) end
return lost
