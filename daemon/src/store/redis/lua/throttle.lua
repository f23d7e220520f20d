-- GCRA shared by every instance: reserves n messages at `per second`,
-- with a burst of one second's worth.
-- KEYS[1]: the delivery's theoretical arrival time (µs)
-- ARGV[1]: now (µs)   ARGV[2]: messages per second   ARGV[3]: n
-- Returns: microseconds to wait before sending the n messages
local now, rate, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + n * 1000000 / rate
redis.call('SET', KEYS[1], string.format('%.0f', new_tat))
-- The TTL only spares memory; it is generous so fake clocks stay correct.
redis.call('PEXPIRE', KEYS[1], math.ceil((new_tat - now) / 1000) + 60000)
local wait = new_tat - now - 1000000
if wait < 0 then wait = 0 end
return math.floor(wait)
