-- Reads a due run and, when it is `preparing`, takes the right to prepare
-- it as claim_preparation.lua does: a due run's first two steps in one.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: lease end (µs)
-- Returns: {seq, agenda, 1 when preparation was taken here else 0, run fields (empty: no run)}
local run, now = KEYS[1], tonumber(ARGV[1])
local f = redis.call('HMGET', run, 'state', 'prep_owner', 'prep_until_us')
local held = tonumber(f[3])
if f[1] ~= 'preparing' or (f[2] and f[2] ~= ARGV[2] and held and held >= now) then
  return finish(run, KEYS[2], now, false, 0, redis.call('HGETALL', run))
end
redis.call('HSET', run, 'prep_owner', ARGV[2], 'prep_until_us', ARGV[3])
return finish(run, KEYS[2], now, true, 1, redis.call('HGETALL', run))
