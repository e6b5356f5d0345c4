-- rate_check: one call against a sliding-window rate limit. The key is a log of the calls
-- counted in the last window (sorted set, score = call time in µs by the Redis clock, so
-- every process agrees on "now"). Calls that left the window are dropped; the call is
-- counted only if it is allowed, so callers that keep getting refused do not lock
-- themselves out. The key expires one window after the newest counted call.
--
-- KEYS: 1 call log
-- ARGV: 1 limit, 2 window in ms, 3 random tag (makes members unique within a microsecond)
-- Returns: {allowed (1/0), calls counted in the window, µs until the oldest leaves it (0 if none)}
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local window = window_ms * 1000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- a call at time s counts while now - s < window
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  local at = string.format('%d', now)
  redis.call('ZADD', KEYS[1], at, at .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window_ms)
  count = count + 1
  allowed = 1
end

local reset = 0
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #oldest > 0 then
  reset = tonumber(oldest[2]) + window - now
  if reset < 0 then reset = 0 end
end
return {allowed, count, reset}
