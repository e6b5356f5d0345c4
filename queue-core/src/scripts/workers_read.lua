-- workers_read: the records of some workers, each checked before it is read: a record gone
-- (expired) takes its worker out of the registry; one of the wrong type, or whose fields are
-- over their caps, is reported, not read.
--
-- KEYS: 1 registry (zset), 2 .. the workers' records
-- ARGV: 1 longest info (bytes), 2 .. the workers' ids (in the order of their records)
-- Returns: per record {status, seen, info}: status 'ok'; 'gone' (no record); or 'bad', the
--          reason in info
local out = {}
local longest = tonumber(ARGV[1])
for i = 2, #KEYS do
  local key = KEYS[i]
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then
    redis.pcall('ZREM', KEYS[1], ARGV[i])
    out[#out + 1] = 'gone'; out[#out + 1] = ''; out[#out + 1] = ''
  elseif kind ~= 'hash' then
    out[#out + 1] = 'bad'; out[#out + 1] = ''
    out[#out + 1] = 'the record is a ' .. kind .. ', not a hash'
  else
    local n = redis.call('HSTRLEN', key, 'info')
    local s = redis.call('HSTRLEN', key, 'seen')
    if n > longest then
      out[#out + 1] = 'bad'; out[#out + 1] = ''
      out[#out + 1] = 'its info is ' .. n .. ' bytes, over the cap of ' .. longest
    elseif s > 20 then
      out[#out + 1] = 'bad'; out[#out + 1] = ''
      out[#out + 1] = 'its last-seen time is ' .. s .. ' bytes long, not a time'
    else
      local v = redis.call('HMGET', key, 'seen', 'info')
      out[#out + 1] = 'ok'; out[#out + 1] = v[1] or ''; out[#out + 1] = v[2] or ''
    end
  end
end
return out
