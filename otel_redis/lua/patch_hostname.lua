-- Set the hostname of a record that still exists (HSET on an expired key would recreate it).
-- KEYS[1] the record, ARGV[1] the hostname; returns 1 when set, 0 when the record is gone.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'client_hostname', ARGV[1])
  return 1
end
return 0
