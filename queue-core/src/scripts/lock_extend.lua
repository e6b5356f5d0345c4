-- lock_extend: renews a handler lock's lease only while it still holds the caller's token,
-- so a renewal can never revive or steal a lock another owner has taken since.
--
-- KEYS: 1 lock key
-- ARGV: 1 owner's token, 2 new lease in ms
-- Returns: 1 if renewed, 0 if the lock was gone or held by another token
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
