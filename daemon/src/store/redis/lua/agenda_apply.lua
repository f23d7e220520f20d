-- Applies a run script's agenda instant to the global agenda, unless a
-- later change of the same run was applied already.
-- KEYS[1]: agenda ZSET (run id → µs)   KEYS[2]: applied sequences (run id → seq)
-- ARGV[1]: run id   ARGV[2]: the run's agenda sequence   ARGV[3]: instant (µs) or -1 to remove
-- Returns: 1 when applied, 0 when overtaken
local applied = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if tonumber(ARGV[2]) < applied then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if tonumber(ARGV[3]) < 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
