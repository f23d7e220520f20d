-- Takes or renews the right to prepare a `preparing` run.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: lease end (µs)
-- Returns: {seq, agenda, 1 | 0}
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'state', 'prep_owner', 'prep_until_us')
if f[1] ~= 'preparing' then
  return finish(KEYS[1], KEYS[2], now, false, 0)
end
local held = tonumber(f[3])
if f[2] and f[2] ~= ARGV[2] and held and held >= now then
  return finish(KEYS[1], KEYS[2], now, false, 0)
end
redis.call('HSET', KEYS[1], 'prep_owner', ARGV[2], 'prep_until_us', ARGV[3])
return finish(KEYS[1], KEYS[2], now, true, 1)
