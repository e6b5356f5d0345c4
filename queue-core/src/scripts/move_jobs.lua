-- move_jobs: put jobs back into their lanes (or groups) as waiting — `retry` (failed → waiting,
-- attempts and error cleared), `revive` (the same for cancelled jobs) or `promote` (delayed
-- → waiting now). Given ids (each moved only while it
-- is still in the source state), or, when no id is given, up to `limit` members of the source
-- set scored at most `max score`, skipping the first `offset` of them: a bulk retry moves the
-- failed set as it was when it started (finish times up to a bound taken then) in bounded
-- batches, and a job that fails again meanwhile scores above the bound, so it is never
-- moved twice. The members skipped by earlier batches stay in the set, in front of the rest,
-- hence the offset. A job whose priority has no lane yet (a flow parent of a queue that
-- holds only parents, say) gets its lane made here, as an add makes one.
--
-- KEYS: 1 meta, 2 lanes, 3 source set (failed, cancelled or delayed), 4 marker, 5 events,
--       6 .. lane streams (the caller's current lanes)
-- ARGV: 1 mode ('retry' | 'revive' | 'promote'), 2 group, 3 events maxlen, 4 job key prefix,
--       5 lanes version the caller knows, 6 limit, 7 max score, 8 offset (both for "all"),
--       9 L, 10 .. 9+L lane priorities, then the ids (none = members of the source set)
-- Returns: {'lanes', version} when stale, else {'ok', moved, skipped id…} where a skipped id
--          was not in the source state (missing, in another state, or a key that is not a
--          hash: a corrupt record)
local meta, lanes, source, marker, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local mode, group, maxlen, job_prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local limit, L = tonumber(ARGV[6]), tonumber(ARGV[9])
local ver = redis.call('HGET', meta, 'lanes_ver') or '0'
if ver ~= ARGV[5] then return {'lanes', ver} end
-- each lane's stream by priority: the caller's, and those made here
local lane_key = {}
for i = 1, L do lane_key[ARGV[9 + i]] = KEYS[5 + i] end
-- the lane of priority `prio`, made when the queue has none yet (its readers see the new
-- lanes version); nil for a priority no job may have, or one not written as an add writes
-- it (`007`, `-0`: a corrupt record, whose lane no reader would name the same)
local function lane_for(prio)
  if lane_key[prio] then return lane_key[prio] end
  if not valid_priority(prio) or string.format('%d', tonumber(prio)) ~= prio then
    return nil
  end
  local key = string.sub(job_prefix, 1, -3) .. 'ready:' .. prio
  open_lane(meta, lanes, key, prio, group)
  lane_key[prio] = key
  return key
end
local want = ({retry = 'failed', revive = 'cancelled'})[mode] or 'delayed'
local again = mode ~= 'promote'

local ids = {}
for i = 10 + L, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then
  ids = redis.call('ZRANGEBYSCORE', source, '-inf', ARGV[7], 'LIMIT', tonumber(ARGV[8]), limit)
end

local moved, skipped = {}, {}
local G = nil
for _, id in ipairs(ids) do
  local job = job_prefix .. id
  local f = job_fields(job, {'state', 'prio', 'grp'}) or {}
  local lane = f[1] == want and not f[3] and lane_for(f[2] or '0')
  if f[1] ~= want or not (lane or f[3]) then
    skipped[#skipped + 1] = id
  else
    redis.call('ZREM', source, id)
    local clear = again and {'error', 'stack', 'finished', 'result', 'due', 'cxl'} or {'due'}
    if again then redis.call('HSET', job, 'att', 0, 'stalls', 0) end
    if f[3] then
      G = G or group_keys(job_prefix)
      group_wait(G, job, id, f[2], f[3], false, unpack(clear))
    else
      set_waiting(job, redis.call('XADD', lane, '*', 'i', id), unpack(clear))
    end
    moved[#moved + 1] = id
  end
end
if #moved > 0 then
  hincr(meta, 'waiting', #moved)
  emit_ids(events, maxlen, 'waiting', moved)
  wake(marker, 0)
end
local out = {'ok', #moved}
for _, id in ipairs(skipped) do out[#out + 1] = id end
return out
