-- remove_jobs: delete jobs that are not running — waiting (its lane entry, or its place in
-- its group, too), delayed, completed, failed, cancelled, or a flow parent waiting for its
-- children — with their logs. An
-- active job (its entry pending in the group) is refused: it can be removed once it
-- finishes. A flow child removed before it finished tells its parent (outbox): it counts
-- as finished, removed. A job whose key is not a hash (a corrupt record) is removed too,
-- out of every set that lists it: nothing else can be done with it. A lean job (job.rs
-- `lean_id`: its lane entry alone, no hash) is removed as any other, its entry deleted.
--
-- KEYS: 1 meta, 2 delayed, 3 completed, 4 failed, 5 events, 6 outbox, 7 waiting children,
--       8 staged, 9 .. lane streams
-- ARGV: 1 group, 2 events maxlen, 3 job key prefix, 4 lanes version, 5 L,
--       6 .. 5+L lane priorities, then the ids
-- Returns: {'lanes', version} when stale, else {'ok', removed, then per refused or missing
--          job: id, reason ('active' | 'missing')}
local meta, delayed, completed, failed, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local outbox, waiting_children, staged = KEYS[6], KEYS[7], KEYS[8]
local group, maxlen, job_prefix = ARGV[1], ARGV[2], ARGV[3]
local L = tonumber(ARGV[5])
local ver = redis.call('HGET', meta, 'lanes_ver') or '0'
if ver ~= ARGV[4] then return {'lanes', ver} end
local lane_of = {}
for i = 1, L do lane_of[ARGV[5 + i]] = 8 + i end
local removed, refused, undelivered = {}, {}, 0
local G, cancelled = group_keys(job_prefix), cancel_keys(job_prefix).set
local last_of = {}
local lean_gone = {}
for i = 6 + L, #ARGV do
  local id = ARGV[i]
  local job = job_prefix .. id
  -- a lean job without a record (its lane entry alone): one running is refused as it is;
  -- one waiting gets its record first, from its entry, so the rest removes it as any other
  -- (its entry XDEL'd, `waiting` counted down); a finished one (its entry acknowledged)
  -- gets none: 'missing'
  local lean_prio, lean_sid = lean_place(id)
  local lean_lane = lean_prio and lane_of[lean_prio]
  local lean_running = false
  if lean_lane then
    if redis.call('EXISTS', job) == 0 and pending_entry(KEYS[lean_lane], group, lean_sid) then
      lean_running = true
    else
      lean_record(job_prefix, job, id, KEYS[lean_lane], lean_prio, lean_sid, nil, group)
    end
  end
  local f = job_fields(job, {'state', 'sid', 'prio', 'ln', 'par', 'grp'})
  -- (a record that is not a hash reads as a finished job: left nowhere but in the sets)
  f = f or {'failed'}
  local state, sid, lane = job_state(f[1], f[2]), f[2], lane_of[lane_name(f[4], f[3])]
  local lane_key = lane and KEYS[lane]
  local place = waiting_place(state, sid, f[6], lane_key, group)
  if lean_running then
    refused[#refused + 1] = id; refused[#refused + 1] = 'active'
  elseif not state then
    refused[#refused + 1] = id; refused[#refused + 1] = 'missing'
  elseif place == 'running' then
    refused[#refused + 1] = id; refused[#refused + 1] = 'active'
  else
    if leave_waiting(place, G, id, sid, f[6], lane_key, group, last_of) then
      undelivered = undelivered + 1
    end
    if f[5] and state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then
      notify_parent(outbox, id, f[5], 'r', '')
    end
    on_index('ZREM', delayed, id)
    on_index('ZREM', completed, id)
    on_index('ZREM', failed, id)
    -- (a cancelled set of the wrong type, a corrupt record, holds nothing to remove)
    redis.pcall('ZREM', cancelled, id)
    redis.call('ZREM', waiting_children, id)
    redis.call('ZREM', staged, id)
    delete_job(job_prefix, id)
    removed[#removed + 1] = id
    if lean_place(id) then lean_gone[#lean_gone + 1] = id end
  end
end
-- (lean jobs gone have no entry of their own any more: out of the set claims look up)
if #lean_gone > 0 then on_index('SREM', lean_records_key(job_prefix), unpack(lean_gone)) end
if undelivered > 0 then hincr(meta, 'waiting', -undelivered) end
emit_ids(events, maxlen, 'removed', removed)
local out = {'ok', #removed}
for _, v in ipairs(refused) do out[#out + 1] = v end
return out
