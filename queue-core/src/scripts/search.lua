-- search: examines one bounded batch of the jobs of one place (a sorted set, a lane, the
-- groups' queues), newest first, and returns those that pass a search's filters with where
-- the next batch starts. A read: it changes nothing. The caller (search.rs) loops from the
-- position returned, place after place, so no call examines more than ARGV[11] entries or
-- reads more than ARGV[12] bytes of job hashes, whatever the queue holds. Records of any
-- content are read safely: a key of the wrong type ends its place, a job hash of the wrong
-- type or with garbage fields simply does not match. A lane's lean jobs (prelude *Lean
-- jobs*) are found by their entries while they have no record, and by it once they have.
--
-- KEYS: 1 the place: a sorted set of job ids ('sorted'), a lane stream ('undelivered':
--       its entries not delivered yet, waiting; 'delivered': pending ones, active), or the
--       groups' waiting counts (`:gwait`, 'groups': every group's queue, `:gq:<group>`)
-- ARGV: 1 kind ('sorted', 'undelivered', 'delivered', 'groups'), 2 job key prefix,
--       3 consumer group, 4 the state a 'sorted' place's jobs record, 5 name ('' any),
--       6 text in the data ('' any), 7 text in the failure reason ('' any),
--       8 created at or after (ms, 0 any), 9 lowest score of a 'sorted' place ('-inf', or
--       the cutoff when scores are times at or after creation), 10 matches wanted,
--       11 most entries examined, 12 most bytes read, 13 bytes of data searched,
--       14 most microseconds spent, 15 a lane's priority ('' for other places, and for
--       the lanes that hold no lean job), 16.. position: 'sorted' {score, skip} ('+inf',
--       0 to start); lanes {entry id} ('+' to start); 'groups' {ZSCAN cursor, group,
--       score, skip} ('0', '', '+inf', 0)
-- Returns: {'more' or 'done', now ms, #position, position…, id, idle ms (-1 unless
--          active), id, idle, …}
local place, kind, prefix, cgroup = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local want_state, name, data_text, err_text = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local since, min_score = tonumber(ARGV[8]), ARGV[9]
local wanted, max_examined, max_bytes = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local data_bytes, max_us = tonumber(ARGV[13]), tonumber(ARGV[14])
local lane_prio = ARGV[15]
local pos = {}
for i = 16, #ARGV do pos[#pos + 1] = ARGV[i] end

-- entries fetched per command: a page of a set or a lane, cut to what the budget has left
local PAGE = 200
-- most bytes of a lane entry: a lean job's (data and options up to 4 KiB, its name, trace
-- context and field names)
local LEAN_ENTRY_MOST = 4864
local examined, bytes, found = 0, 0, {}

-- the clock in microseconds: a call also stops after `max_us`, so a slow or busy server
-- keeps calls short too (looked at every few entries)
local function micros()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local started, looked, late = micros(), 0, false

local function spent()
  if examined >= max_examined or bytes >= max_bytes or #found / 2 >= wanted or late then
    return true
  end
  if examined - looked >= 16 then
    looked = examined
    late = micros() - started >= max_us
  end
  return late
end

-- what is read of each job hash: the fields every filter needs, the data's first piece and
-- its piece count when searching the data, the reason when searching it
local FIELDS = {'state', 'sid', 'name', 'ts', 'grp'}
local F_DATA, F_ERROR
if data_text ~= '' then
  -- the data's first four pieces and its count: all of most data, one read
  F_DATA = #FIELDS + 1
  for _, f in ipairs({'data', 'data:n', 'data:2', 'data:3', 'data:4'}) do FIELDS[#FIELDS + 1] = f end
end
if err_text ~= '' then FIELDS[#FIELDS + 1] = 'error'; F_ERROR = #FIELDS end

-- HMGET of `names` of hash `job`, counted in the bytes read; nil for a key of another type
local function read(job, names)
  local f = redis.pcall('HMGET', job, unpack(names))
  if type(f) ~= 'table' or f.err then return nil end
  for i = 1, #names do
    if type(f[i]) == 'string' then bytes = bytes + #f[i] end
  end
  return f
end

-- The first `data_bytes` of the data from its HMGET (first piece, count, pieces 2 to 4 at
-- f[at] …). Stored in up to 64 pieces of 64 bytes, or past 4 KiB in three of them then
-- pieces of up to 64 KiB (job.rs `pieces`): pieces 5 to 64 are read only when the first
-- four are small and short of `data_bytes`. A count that is not a number leaves the first
-- piece alone.
local function data_head(job, f, at)
  local first, n = f[at], tonumber(f[at + 1])
  if not n or n < 2 or n ~= math.floor(n) then return first end
  local parts, have, small = {first}, #first, #first <= 64
  for k = 2, math.min(n, 4) do
    local v = f[at + k]
    if type(v) == 'string' then
      parts[#parts + 1] = v; have = have + #v; small = small and #v <= 64
    end
  end
  if n > 4 and small and have < data_bytes then
    local names = {}
    for k = 5, math.min(n, 64) do names[#names + 1] = 'data:' .. k end
    local got = read(job, names)
    if got then
      for i = 1, #names do
        if type(got[i]) == 'string' then parts[#parts + 1] = got[i] end
      end
    end
  end
  return string.sub(table.concat(parts), 1, data_bytes)
end

-- Whether job `id` passes the filters, and is where the place says: a 'sorted' place's jobs
-- record its state; a lane's job has no state and points at entry `sid`; a group's job has
-- no state, `sid` = 'g' and `grp` = its group.
local function passes(id, sid, grp)
  local job = prefix .. id
  local f = read(job, FIELDS)
  if not f then return false end
  if sid then
    if f[1] or f[2] ~= sid then return false end
    if grp and f[5] ~= grp then return false end
  elseif f[1] ~= want_state then
    return false
  end
  if name ~= '' and f[3] ~= name then return false end
  if since > 0 then
    -- (a lean job's kept record has no `ts`: its entry's time, in its id)
    local ts = f[4]
    if not ts then
      local _, lean_sid = lean_place(id)
      ts = lean_sid and entry_time(lean_sid)
    end
    if (tonumber(ts) or 0) < since then return false end
  end
  if F_ERROR then
    local e = f[F_ERROR]
    if type(e) ~= 'string' or not string.find(e, err_text, 1, true) then return false end
  end
  if F_DATA then
    if type(f[F_DATA]) ~= 'string' then return false end
    local d = f[F_DATA + 1] and data_head(job, f, F_DATA) or f[F_DATA]
    if not string.find(d, data_text, 1, true) then return false end
  end
  return true
end

-- Whether the lean job `id` of lane entry `sid` (its fields `fields`) passes the filters:
-- as its record says when it has one (the record speaks then, as for any job), else as the
-- entry does (its name and data; created at the entry's time; no failure reason yet). The
-- entry is counted in the bytes read: it holds the data, at most ~4 KiB.
local function passes_lean(id, sid, fields)
  if redis.call('EXISTS', prefix .. id) == 1 then return passes(id, sid) end
  local v = {}
  for i = 1, #fields - 1, 2 do
    if v[fields[i]] == nil then v[fields[i]] = fields[i + 1] end
    bytes = bytes + #fields[i + 1]
  end
  if name ~= '' and v.n ~= name then return false end
  if since > 0 and (tonumber(entry_time(sid)) or 0) < since then return false end
  if F_ERROR then return false end
  if F_DATA then
    if type(v.d) ~= 'string' then return false end
    if not string.find(string.sub(v.d, 1, data_bytes), data_text, 1, true) then return false end
  end
  return true
end

-- Walks sorted set `key` down from score `max` (skipping the first `skip` members of that
-- score, seen already), to `min`; its jobs are checked by `check(id)`. Returns whether the
-- set is done, and where to go on.
local function walk_sorted(key, max, skip, min, check)
  while not spent() do
    local count = math.min(PAGE, max_examined - examined)
    local r = redis.pcall('ZREVRANGEBYSCORE', key, max, min, 'WITHSCORES', 'LIMIT', skip, count)
    -- a key of another type (a corrupt record) holds nothing to search
    if type(r) ~= 'table' or r.err or #r == 0 then return true, max, skip end
    for i = 1, #r, 2 do
      local id, score = r[i], r[i + 1]
      if score == max then skip = skip + 1 else max, skip = score, 1 end
      examined = examined + 1
      if check(id) then found[#found + 1] = id; found[#found + 1] = -1 end
      if spent() and i + 1 < #r then return false, max, skip end
    end
    if #r / 2 < count then return true, max, skip end
  end
  return false, max, skip
end

local status, out_pos = 'more', nil

if kind == 'sorted' then
  local done, max, skip = walk_sorted(place, pos[1], tonumber(pos[2]), min_score,
    function(id) return passes(id) end)
  status, out_pos = done and 'done' or 'more', {max, skip}

elseif kind == 'undelivered' or kind == 'delivered' then
  -- waiting: the entries after the group's last delivered one; active: the rest, pending
  local last = last_delivered(place, cgroup)
  local hi, lo = pos[1], '-'
  if kind == 'undelivered' then
    lo = '(' .. last
  elseif hi == '+' then
    hi = last
  end
  if kind == 'delivered' and last == '0-0' then
    status, out_pos = 'done', {hi}
  else
    -- an entry is added when or after its job is created: none below the cutoff is newer
    if since > 0 then
      local cut = string.format('%d', since) .. '-0'
      if kind == 'delivered' or id_gt(cut, last) then lo = cut end
    end
    while true do
      if spent() then status = 'more'; break end
      -- (a lean job's entry holds its data: no more of them than the bytes left allow)
      local count = math.min(PAGE, max_examined - examined,
        math.max(1, math.floor((max_bytes - bytes) / LEAN_ENTRY_MOST)))
      local r = redis.pcall('XREVRANGE', place, hi, lo, 'COUNT', count)
      if type(r) ~= 'table' or r.err or #r == 0 then status = 'done'; break end
      local stopped = false
      for i, e in ipairs(r) do
        local sid = e[1]
        hi = '(' .. sid
        examined = examined + 1
        local id, ok = entry_id(e[2]), false
        if id then
          ok = passes(id, sid)
        elseif lane_prio ~= '' and is_lean_entry(e[2]) then
          id = lean_id(lane_prio, sid)
          ok = passes_lean(id, sid, e[2])
        end
        if ok then
          if kind == 'undelivered' then
            found[#found + 1] = id; found[#found + 1] = -1
          else
            local p = redis.pcall('XPENDING', place, cgroup, sid, sid, 1)
            if type(p) == 'table' and not p.err and p[1] then
              found[#found + 1] = id; found[#found + 1] = p[1][3]
            end
          end
        end
        if spent() and i < #r then stopped = true; break end
      end
      if stopped then status = 'more'; break end
      if #r < count then status = 'done'; break end
    end
    out_pos = {hi}
  end

elseif kind == 'groups' then
  local queues = string.sub(prefix, 1, -3) .. 'gq:'
  local cursor, at, max, skip = pos[1], pos[2], pos[3], tonumber(pos[4])
  status = 'done'
  while true do
    local r = redis.pcall('ZSCAN', place, cursor, 'COUNT', 100)
    if type(r) ~= 'table' or r.err then break end
    -- a batch counts too: a sparse set may answer a few empty ones
    examined = examined + 1
    local names = {}
    for i = 1, #r[2], 2 do names[#names + 1] = r[2][i] end
    -- a batch is walked in name order, so a call can stop inside it and the next go on
    table.sort(names)
    for _, grp in ipairs(names) do
      if grp >= at then
        if grp ~= at then max, skip = '+inf', 0 end
        at = grp
        examined = examined + 1
        local done
        done, max, skip = walk_sorted(queues .. grp, max, skip, '-inf',
          function(id) return passes(id, 'g', grp) end)
        if not done then status = 'more'; break end
      end
      if spent() then status = 'more'; break end
    end
    if status == 'more' then break end
    if r[1] == '0' then break end
    cursor, at, max, skip = r[1], '', '+inf', 0
    if spent() then status = 'more'; break end
  end
  out_pos = {cursor, at, max, skip}
end

local out = {status, now_ms(), #out_pos}
for _, v in ipairs(out_pos) do out[#out + 1] = v end
for _, v in ipairs(found) do out[#out + 1] = v end
return out
