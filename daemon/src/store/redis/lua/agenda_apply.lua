-- Applies run scripts' agenda instants to the global agenda, each unless a
-- later change of the same run was applied already. Many runs per call:
-- the store gathers the instants of concurrent run scripts.
-- KEYS[1]: agenda ZSET (run id → µs)   KEYS[2]: applied sequences (run id → seq)
-- ARGV[3i+1]: run id   ARGV[3i+2]: the run's agenda sequence   ARGV[3i+3]: instant (µs) or -1 to remove
-- Returns: how many were applied (not overtaken)
local applied_n = 0
for i = 1, #ARGV, 3 do
  local id, seq, at = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local applied = tonumber(redis.call('HGET', KEYS[2], id) or '-1')
  if seq >= applied then
    redis.call('HSET', KEYS[2], id, seq)
    if at < 0 then
      redis.call('ZREM', KEYS[1], id)
    else
      redis.call('ZADD', KEYS[1], at, id)
    end
    applied_n = applied_n + 1
  end
end
return applied_n
