-- repair_groups: the sweep's look at one page of a queue's groups (ZSCAN of the groups'
-- waiting counts from `cursor`). Puts back what fell out of place (a key deleted by hand, a
-- restored backup): a waiting count that disagrees with its group's queue is set to its
-- size (dropped for an empty queue); a group with waiting jobs in neither the ring nor the
-- park gets its turn back; a group parked at its concurrency cap with no active job (its
-- count lost) returns to the ring.
--
-- At the start of each round (cursor 0) the groups' active counts are checked against
-- what they count: a group's entries pending in the group lane. A count above it (a
-- corrupt record) would hold its group at its cap for ever, one below it let the group
-- past its cap: it is set right, and a group parked at its cap whose count went down
-- returns to the ring (the claim parks it again if it is still full). Done only while at
-- most RECOUNT_MAX entries are pending and groups counted (~2 calls an entry), and not at
-- all while one entry cannot be put down to its group (its job hash gone: removed while
-- it ran), so the counts are made exact or left alone.
--
-- KEYS: 1 meta, 2 marker
-- ARGV: 1 job key prefix, 2 cursor, 3 page size, 4 consumer group
-- Returns: {next cursor, groups repaired}
local G = group_keys(ARGV[1])
group_keys_sane(G)
local repaired = 0
if ARGV[2] == '0' and redis.call('ZCARD', G.active) <= RECOUNT_MAX then
  local by = group_lane_counts(G, ARGV[4], ARGV[1])
  -- counted again: claims start grouped jobs again (prelude active_lost)
  if by then redis.call('HDEL', G.meta, 'gal') end
  local counts = by and redis.call('ZRANGE', G.active, 0, -1, 'WITHSCORES') or {}
  local seen = {}
  for i = 1, #counts, 2 do
    local g, recorded = counts[i], tonumber(counts[i + 1]) or 0
    local actual = by[g] or 0
    seen[g] = true
    if recorded ~= actual then
      if actual > 0 then
        redis.call('ZADD', G.active, actual, g)
      else
        redis.call('ZREM', G.active, g)
      end
      if actual < recorded and redis.call('ZSCORE', G.park, g) == 'inf' then
        group_unpark(G, g)
      end
      repaired = repaired + 1
    end
  end
  -- (a group whose count was lost while its jobs run: counted again, so it keeps its cap)
  for g, actual in pairs(by or {}) do
    if not seen[g] then
      redis.call('ZADD', G.active, actual, g)
      repaired = repaired + 1
    end
  end
end

local page = redis.call('ZSCAN', G.waiting, ARGV[2], 'COUNT', tonumber(ARGV[3]))
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
