-- set_paused: pause (workers start nothing new from the queue) or resume it.
-- KEYS: 1 meta, 2 marker, 3 events
-- ARGV: 1 '1' to pause, '0' to resume, 2 events maxlen
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'paused', '1')
  emit(KEYS[3], ARGV[2], 'event', 'paused')
else
  redis.call('HDEL', KEYS[1], 'paused')
  wake(KEYS[2], 0)
  emit(KEYS[3], ARGV[2], 'event', 'resumed')
end
return 1
