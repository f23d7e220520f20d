-- Creates a run in `preparing` unless one with this id exists.
-- KEYS[1]: run hash   KEYS[2]: run leases   KEYS[3]: definition snapshot
-- ARGV[1]: now (µs)   ARGV[2]: definition JSON   ARGV[3..]: run hash fields and values
-- Returns: {seq, agenda, 'created' | 'exists'}
local now = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  return finish(KEYS[1], KEYS[2], now, false, 'exists')
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SET', KEYS[3], ARGV[2])
return finish(KEYS[1], KEYS[2], now, true, 'created')
