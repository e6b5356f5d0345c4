-- claim_fast: a worker's claim of one lane's entries without Lua touching them
-- (claim_fast.rs). One transaction: this script as the gate, a plain XREADGROUP of the lane
-- for the worker's consumer, then this script again as the seal. Redis sends the entries
-- straight to the worker: about a third of what reading them into a script, checking them
-- there and returning them cost (move_to_active). The worker checks each lean entry itself,
-- as move_to_active would, and has claim_entries claim the entries that are not lean jobs.
--
-- The gate notes where the lane's consumer group stood: its pending count and last
-- delivered entry, in the scratch key. The seal checks that the claim is one move_to_active
-- would have made (nothing else has changed in between: the three run as one): the lanes are
-- the ones the worker knows, the queue is not paused and has no limit set, no group has a
-- turn or is parked, no lean job has a record (an entry of the lane might be one of theirs),
-- no delayed job is due, and no lane of higher priority has an undelivered entry. Then it
-- counts the entries read out of `waiting`; else it gives them back, undelivered again
-- (acknowledged, and the group set back to the entry it stood at), and the worker claims
-- with move_to_active.
--
-- Sent whole (EVAL, not EVALSHA): a script Redis no longer has would fail inside the
-- transaction while the read in it still ran. So it stands without the prelude (~53 KB
-- sent and hashed twice a claim), and restates the little of it that it needs: the
-- group's fields as `last_delivered` reads them, a lane's undelivered entries as
-- `undelivered` finds them (any, not how many), and `hincr`'s counter fallback. Under maxmemory Redis refuses the whole
-- transaction when it is queued (the scripts may write); one that reaches it in between
-- runs with the gate's write refused (the seal says so).
--
-- KEYS: 1 the lane read, 2 scratch; the seal's also 3 meta, 4 delayed, 5 marker,
--       6 lean records, 7 group ring, 8 parked groups, 9 .. the lanes of higher priority
-- ARGV: 1 'gate' or 'seal', 2 group; the seal's also 3 the count asked, 4 the lanes
--       version the worker knows, 5 the consumer
-- Returns: the gate 0; the seal {'ok', next due ms or -1, start ms, entries read} or
--          {'veto', why} (nothing claimed) or {'gate'} (the gate left no note, refused a
--          write because Redis reached maxmemory meanwhile: the entries read were not
--          counted out of `waiting`; the worker gives them back, saying so)
local lane, scratch, group = KEYS[1], KEYS[2], ARGV[2]

-- The consumer group's fields in `key` (XINFO GROUPS), or nil: no stream, or no group.
local function group_state(key)
  local gs = redis.pcall('XINFO', 'GROUPS', key)
  if type(gs) ~= 'table' or gs.err then return nil end
  for _, g in ipairs(gs) do
    local s = {}
    for f = 1, #g - 1, 2 do s[g[f]] = g[f + 1] end
    if s.name == group then return s end
  end
  return nil
end

if ARGV[1] == 'gate' then
  local s = group_state(lane)
  if s then
    local read = tonumber(s['entries-read'])
    redis.call('SET', scratch, string.format('%d', s.pending) .. ' ' .. s['last-delivered-id']
      .. ' ' .. (read and string.format('%d', read) or ''))
  else
    redis.call('DEL', scratch)
  end
  return 0
end

local meta, delayed, marker, lean_set = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local count, version, consumer = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local before = redis.call('GETDEL', scratch)
local s = group_state(lane)
-- no group (the read failed with it): nothing read, the worker claims the usual way
if not s then return {'veto', 'no group'} end
if not before then return {'gate'} end
local p0, last0, read0 = string.match(before, '^(%d+) (%S+) ?(%S*)$')
local read = s.pending - tonumber(p0)

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- A number from a read that must be one (a key of another type, a corrupt record, is not).
local function n_of(r)
  return type(r) == 'number' and r or nil
end
-- Whether lane stream `key` has an entry its group has not delivered (or cannot tell).
local function undelivered(key)
  local g = group_state(key)
  if not g then return n_of(redis.pcall('XLEN', key)) ~= 0 end
  local e = redis.pcall('XRANGE', key, '(' .. g['last-delivered-id'], '+', 'COUNT', 1)
  return type(e) ~= 'table' or e.err ~= nil or #e > 0
end

local why, next_due = nil, -1
local m = redis.pcall('HMGET', meta, 'lanes_ver', 'paused', 'rate_max', 'conc')
if type(m) ~= 'table' or m.err then
  why = 'meta'
elseif (m[1] or '0') ~= version then
  why = 'lanes'
elseif m[2] == '1' then
  why = 'paused'
elseif m[3] or m[4] then
  why = 'limits'
elseif n_of(redis.pcall('SCARD', lean_set)) ~= 0 then
  why = 'lean records'
elseif n_of(redis.pcall('ZCARD', KEYS[7])) ~= 0 or n_of(redis.pcall('ZCARD', KEYS[8])) ~= 0 then
  why = 'groups'
else
  local head = redis.pcall('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if type(head) ~= 'table' or head.err then
    why = 'delayed'
  elseif head[2] then
    next_due = tonumber(head[2]) or now
    if next_due <= now then why = 'due' end
  end
end
if not why then
  for k = 9, #KEYS do
    if undelivered(KEYS[k]) then
      why = 'higher lane'
      break
    end
  end
end

if why then
  if read > 0 then
    -- given back: the group set back to where it stood, then the entries acknowledged, so
    -- they are undelivered again (nothing else read them: the transaction is one). Those
    -- read are the entries pending to this consumer past where the group stood.
    local pending = redis.call('XPENDING', lane, group, '(' .. last0, '+', read, consumer)
    local set = read0 ~= '' and redis.pcall('XGROUP', 'SETID', lane, group, last0,
      'ENTRIESREAD', read0)
    if not set or type(set) == 'table' and set.err then
      redis.call('XGROUP', 'SETID', lane, group, last0)
    end
    local ids = {}
    for i, e in ipairs(pending) do ids[i] = e[1] end
    if #ids > 0 then redis.call('XACK', lane, group, unpack(ids)) end
  end
  return {'veto', why}
end

if read > 0 then
  local r = redis.pcall('HINCRBY', meta, 'waiting', -read)
  if type(r) ~= 'number' then redis.call('HSET', meta, 'waiting', -read) end
end
-- a full batch may leave more behind: let another blocked worker look too
if read >= count then redis.pcall('ZADD', marker, 'LT', 0, 'm') end
local start = tonumber(t[1]) * 1000 + math.ceil(tonumber(t[2]) / 1000)
return {'ok', next_due, start, read}
