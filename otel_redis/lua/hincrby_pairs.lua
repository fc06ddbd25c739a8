-- Many counters of one hash in one command: ARGV holds (field, increment) pairs (a batch's
-- response-time histogram of one hash). One key, so Cluster-safe.
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 0
