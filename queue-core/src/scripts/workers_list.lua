-- workers_list: the ids of the live workers (their registry entry not past its expiry),
-- after pruning a bounded number of expired entries (their records expired with them, by
-- their TTL). A registry of the wrong type (a corrupt record) lists nothing; the next
-- heartbeat replaces it.
--
-- KEYS: 1 registry (zset)
-- ARGV: 1 most ids listed, 2 prune budget, 3 longest id (bytes)
-- Returns: per live worker (the first by expiry, at most ARGV 1): id, expiry (ms, as
--          stored), 1 (or 0: an id over the longest, clipped to it)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('TYPE', KEYS[1])['ok'] ~= 'zset' then return {} end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
end
local out = {}
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
local longest = tonumber(ARGV[3])
for i = 1, #live, 2 do
  local id = live[i]
  if #id > longest then
    out[#out + 1] = string.sub(id, 1, longest); out[#out + 1] = live[i + 1]; out[#out + 1] = 0
  else
    out[#out + 1] = id; out[#out + 1] = live[i + 1]; out[#out + 1] = 1
  end
end
return out
