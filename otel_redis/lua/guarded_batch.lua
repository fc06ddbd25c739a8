-- The non-idempotent part of one batch (stream entries, counters, histogram and aggregate
-- increments, their expiries), applied at most once. KEYS[1] is the batch's marker
-- (schema.batch_marker). ARGV[1] is the marker's TTL, then the ops, each a kind and its arguments:
--   X stream key            XADD stream * k key
--   H key field amount      HINCRBY
--   C n arg1..argn          any other command
--   P key n f1 a1 ...       HINCRBY per (field, amount) pair (a histogram)
--   I key cap ttl n f1 a1 ...  capped HINCRBY (a field beyond cap fields goes to _OTHER), EXPIRE
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
local function pairs_op(key, count, first, capped, cap)
  local last = first + count - 1
  for j = first, last, 2 do
    local f = ARGV[j]
    if capped then
      local has = redis.pcall('HEXISTS', key, f)
      if type(has) == 'table' then return has end
      if has == 0 and redis.pcall('HLEN', key) >= cap then f = '_OTHER' end
    end
    local r = redis.pcall('HINCRBY', key, f, ARGV[j + 1])
    if type(r) == 'table' and r.err then return r end
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
    note(pairs_op(ARGV[i + 1], count, i + 3, false, 0))
    i = i + 3 + count
  elseif kind == 'I' then
    local key = ARGV[i + 1]
    local count = tonumber(ARGV[i + 4])
    local r = pairs_op(key, count, i + 5, true, tonumber(ARGV[i + 2]))
    if r == 0 then r = redis.pcall('EXPIRE', key, ARGV[i + 3]) end
    note(r)
    i = i + 5 + count
  elseif kind == 'S' then
    local key = ARGV[i + 1]
    local cap = tonumber(ARGV[i + 2])
    local count = tonumber(ARGV[i + 4])
    local r = 0
    for j = i + 5, i + 4 + count, 2 do
      if redis.pcall('HEXISTS', key, ARGV[j]) == 1 or redis.pcall('HLEN', key) < cap then
        r = redis.pcall('HSET', key, ARGV[j], ARGV[j + 1])
        if type(r) == 'table' and r.err then break end
      end
    end
    if not (type(r) == 'table' and r.err) then r = redis.pcall('EXPIRE', key, ARGV[i + 3]) end
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
