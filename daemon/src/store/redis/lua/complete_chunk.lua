-- Marks a claimed chunk finished; the last one ends the run.
-- KEYS[1]: run hash   KEYS[2]: run leases   KEYS[3]: lease owners
-- ARGV[1]: chunk number   ARGV[2]: owner   ARGV[3]: now (µs)   ARGV[4]: now (text)
-- Returns: {seq, agenda, 1 when completed | 0 when the caller does not hold it}
local run, leases, now = KEYS[1], KEYS[2], tonumber(ARGV[3])
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2]
  or not redis.call('ZSCORE', leases, ARGV[1]) then
  return finish(run, leases, now, false, 0)
end
redis.call('ZREM', leases, ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local done = redis.call('HINCRBY', run, 'chunks_done', 1)
local f = redis.call('HMGET', run, 'state', 'chunks')
if done >= tonumber(f[2]) then
  if f[1] == 'sending' or f[1] == 'paused' then
    redis.call('HSET', run, 'state', 'sent', 'finished_at', ARGV[4])
  elseif f[1] == 'cancelled' then
    redis.call('HSETNX', run, 'finished_at', ARGV[4])
  end
end
return finish(run, leases, now, true, 1)
