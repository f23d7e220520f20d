-- Writes (or overwrites) one chunk of a `preparing` run.
-- KEYS[1]: run hash   KEYS[2]: chunk bodies   KEYS[3]: chunk recipient ids
-- ARGV[1]: chunk number   ARGV[2]: chunk JSON   ARGV[3]: its recipient ids, "\31"-separated
-- Returns: 1 when written, 0 when the run is not `preparing`
if redis.call('HGET', KEYS[1], 'state') ~= 'preparing' then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
