-- repair_groups: the sweep's look at one page of a queue's groups (ZSCAN of the groups'
-- waiting counts from `cursor`). Puts back what fell out of place (a key deleted by hand, a
-- restored backup): a waiting count that disagrees with its group's queue is set to its
-- size (dropped for an empty queue); a group with waiting jobs in neither the ring nor the
-- park gets its turn back; a group parked at its concurrency cap with no active job (its
-- count lost) returns to the ring.
--
-- KEYS: 1 meta, 2 marker
-- ARGV: 1 job key prefix, 2 cursor, 3 page size
-- Returns: {next cursor, groups repaired}
local G = group_keys(ARGV[1])
group_keys_sane(G)
local page = redis.call('ZSCAN', G.waiting, ARGV[2], 'COUNT', tonumber(ARGV[3]))
local repaired = 0
for i = 1, #page[2], 2 do
  local g, counted = page[2][i], tonumber(page[2][i + 1])
  local n = redis.call('ZCARD', G.q .. g)
  if n == 0 then
    redis.call('ZREM', G.waiting, g)
    redis.call('ZREM', G.ring, g)
    repaired = repaired + 1
  else
    if counted ~= n then
      redis.call('ZADD', G.waiting, n, g)
      repaired = repaired + 1
    end
    local parked = redis.call('ZSCORE', G.park, g)
    if parked == 'inf' and not redis.call('ZSCORE', G.active, g) then
      redis.call('ZREM', G.park, g)
      parked = false
    end
    if not parked and not redis.call('ZSCORE', G.ring, g) then
      ring_add(G, g)
      repaired = repaired + 1
    end
  end
end
if repaired > 0 then wake(KEYS[2], 0) end
return {page[1], repaired}
