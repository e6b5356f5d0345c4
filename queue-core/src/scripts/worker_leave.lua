-- worker_leave: a worker that stops gracefully takes itself out of the registry at once.
--
-- KEYS: 1 registry (zset), 2 this worker's record
-- ARGV: 1 worker id
-- Returns: 1
redis.pcall('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
