-- pending past its confirm deadline → expired.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: now (µs)   ARGV[2]: now (text)
-- Returns: {seq, agenda, 'done' | current state | 'missing', run fields}
local run, now = KEYS[1], tonumber(ARGV[1])
local f = redis.call('HMGET', run, 'state', 'deadline_us')
if not f[1] then return finish(run, KEYS[2], now, false, 'missing') end
if f[1] ~= 'pending' or now < tonumber(f[2]) then
  return finish(run, KEYS[2], now, false, f[1])
end
redis.call('HSET', run, 'state', 'expired', 'finished_at', ARGV[2])
return finish(run, KEYS[2], now, true, 'done', redis.call('HGETALL', run))
