-- The non-idempotent part of one batch (stream entries, counters, histogram and aggregate
-- increments, their expiries), applied at most once. KEYS[1] is the batch's marker
-- (schema.batch_marker). ARGV[1] is the marker's TTL, then the ops, each a kind and its arguments:
--   X stream key            XADD stream * k key
--   H key field amount      HINCRBY
--   C n arg1..argn          any other command
--   P key n f1 a1 ...       HINCRBY per (field, amount) pair (a histogram)
--   I key cap ttl n f1 a1 ...  capped HINCRBY (a field beyond cap fields goes to _OTHER), EXPIRE;
--                              its reply is the hash's field names (HKEYS) once it is full
--                              (cap fields or more: its names never change again, so the writer
--                              folds later values into _OTHER itself and sends a P op instead)
--   S key cap ttl n f1 v1 ...  capped HSET, EXPIRE
-- Returns {1, reply of each op (an error reply for an op that failed)}, or, when the marker
-- exists already (a resent round trip whose first copy ran), {0, the failed ops of that run}.
if not redis.call('SET', KEYS[1], '', 'NX', 'EX', ARGV[1]) then
  return {0, redis.call('GET', KEYS[1])}
end
local out = {1}
local failed = {}
local n = #ARGV
local i = 2
local function note(reply)
  out[#out + 1] = reply
  if type(reply) == 'table' and reply.err then
    failed[#failed + 1] = tostring(#out - 2)
  end
end
local function pairs_op(key, count, first)
  for j = first, first + count - 1, 2 do
    local r = redis.pcall('HINCRBY', key, ARGV[j], ARGV[j + 1])
    if type(r) == 'table' and r.err then return r end
  end
  return 0
end
-- A capped hash's field names when its new fields may not all fit (HLEN + fields > cap): read
-- once (HKEYS, at most cap + 1 names) rather than one HEXISTS per field, as on a listpack every
-- lookup of a missing field scans the whole hash. nil when every field fits (or on an error).
local function names_if_near(key, fields, cap)
  local len = redis.pcall('HLEN', key)
  if type(len) == 'table' then return nil, len, len end
  if len + fields <= cap then return nil, len, nil end
  local have = {}
  for _, name in ipairs(redis.call('HKEYS', key)) do have[name] = true end
  return have, len, nil
end
-- capped HINCRBY: fields beyond cap summed into one _OTHER increment; returns 0 (or an error)
-- and the hash's length after it (at least: _OTHER is not counted when it was added)
local function capped_incr(key, count, first, cap)
  local have, len, err = names_if_near(key, count / 2, cap)
  if err then return err end
  if not have then
    local r = pairs_op(key, count, first)
    if r == 0 and len + count / 2 >= cap then len = redis.call('HLEN', key) end
    return r, len
  end
  local other = 0
  for j = first, first + count - 1, 2 do
    local f = ARGV[j]
    if not have[f] then
      if len < cap then len = len + 1 else f = nil end
    end
    if f then
      local r = redis.pcall('HINCRBY', key, f, ARGV[j + 1])
      if type(r) == 'table' and r.err then return r end
    else
      other = other + tonumber(ARGV[j + 1])
    end
  end
  if other > 0 then
    local r = redis.pcall('HINCRBY', key, '_OTHER', string.format('%d', other))
    if type(r) == 'table' and r.err then return r end
  end
  return 0, len
end
-- capped HSET: a field is set while the hash has room or when it exists
local function capped_set(key, count, first, cap)
  local have, len, err = names_if_near(key, count / 2, cap)
  if err then return err end
  for j = first, first + count - 1, 2 do
    local f = ARGV[j]
    if have and not have[f] then
      if len < cap then len = len + 1 else f = nil end
    end
    if f then
      local r = redis.pcall('HSET', key, f, ARGV[j + 1])
      if type(r) == 'table' and r.err then return r end
    end
  end
  return 0
end
while i <= n do
  local kind = ARGV[i]
  if kind == 'X' then
    note(redis.pcall('XADD', ARGV[i + 1], '*', 'k', ARGV[i + 2]))
    i = i + 3
  elseif kind == 'H' then
    note(redis.pcall('HINCRBY', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]))
    i = i + 4
  elseif kind == 'C' then
    local count = tonumber(ARGV[i + 1])
    note(redis.pcall(unpack(ARGV, i + 2, i + 1 + count)))
    i = i + 2 + count
  elseif kind == 'P' then
    local count = tonumber(ARGV[i + 2])
    note(pairs_op(ARGV[i + 1], count, i + 3))
    i = i + 3 + count
  elseif kind == 'I' then
    local key = ARGV[i + 1]
    local count = tonumber(ARGV[i + 4])
    local cap = tonumber(ARGV[i + 2])
    local r, len = capped_incr(key, count, i + 5, cap)
    if r == 0 then
      r = redis.pcall('EXPIRE', key, ARGV[i + 3])
      if r == 1 and len >= cap then r = redis.call('HKEYS', key) end
    end
    note(r)
    i = i + 5 + count
  elseif kind == 'S' then
    local key = ARGV[i + 1]
    local count = tonumber(ARGV[i + 4])
    local r = capped_set(key, count, i + 5, tonumber(ARGV[i + 2]))
    if r == 0 then r = redis.pcall('EXPIRE', key, ARGV[i + 3]) end
    note(r)
    i = i + 5 + count
  else
    return redis.error_reply('ERR unknown op ' .. tostring(kind))
  end
end
if #failed > 0 then
  redis.call('SET', KEYS[1], table.concat(failed, ','), 'XX', 'KEEPTTL')
end
return out
