-- A due index in one command: add the members ARGV[4..] (score, member pairs, at most 1000
-- arguments per ZADD so that unpack stays within Lua's stack), remove up to ARGV[2] of the oldest
-- members scored below ARGV[1] (the trim) and set the expiry ARGV[3]. Returns how many members the
-- trim removed. One key, so Cluster-safe.
local n = #ARGV
local i = 4
while i <= n do
  local j = i + 999
  if j > n then j = n end
  redis.call('ZADD', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
local removed = 0
local old = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
if old > 0 then
  local cap = tonumber(ARGV[2])
  if old > cap then old = cap end
  removed = redis.call('ZREMRANGEBYRANK', KEYS[1], 0, old - 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return removed
