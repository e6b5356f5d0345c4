-- flow_stage: stores a chunk of a flow's jobs of one queue, none of them runnable yet:
-- each gets state 'waiting_children' and `stg`, and joins the staged set (from which a
-- worker takes it back if the flow's add never commits it). `stg` holds the add's token. A parent also gets its
-- children's hash, every child pending. Nothing is stored when a given id is taken.
--
-- KEYS, ARGV 1-3: as flow.lua; ARGV: 4 N, then per job: id, '1' if the id was given,
--   F, F hash field/value arguments (the first two are 'ts', '' for this script to fill
--   in), K, then K children as '<queue>/<id>', '<position> <name>'
-- Returns: {'ok'} or {'taken', id}
local N = tonumber(ARGV[4])
-- first every given id, so that nothing is stored when one is taken
local a = 4
local jobs = {}
for j = 1, N do
  local id, given, F = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local first = a + 4
  local K = tonumber(ARGV[first + F])
  jobs[j] = {id = id, first = first, last = first + F - 1, kfirst = first + F + 1,
    klast = first + F + 2 * K}
  if given == '1' and redis.call('EXISTS', Q.job_prefix .. id) == 1 then
    return {'taken', id}
  end
  a = first + F + 2 * K
end
local now = now_ms_ceil()
local now_text = ms_text(now)
local ids = {}
for j = 1, N do
  local x = jobs[j]
  local job = Q.job_prefix .. x.id
  ARGV[x.first + 1] = now_text
  hset_list(job, ARGV, x.first, x.last)
  if x.klast > x.kfirst then
    -- pending children: `p<position> <name>`
    for k = x.kfirst + 1, x.klast, 2 do ARGV[k] = 'p' .. ARGV[k] end
    hset_list(kids_key(Q.job_prefix, x.id), ARGV, x.kfirst, x.klast)
  end
  ids[#ids + 1] = now_text
  ids[#ids + 1] = x.id
end
for i = 1, #ids, SLICE do
  redis.call('ZADD', Q.staged, unpack(ids, i, math.min(i + SLICE - 1, #ids)))
end
return {'ok'}
