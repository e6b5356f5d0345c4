-- lock_release: deletes a handler lock only while it still holds the caller's token, so an
-- owner whose lease expired cannot delete the lock someone else has taken since.
--
-- KEYS: 1 lock key
-- ARGV: 1 owner's token
-- Returns: 1 if released, 0 if the lock was gone or held by another token
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
