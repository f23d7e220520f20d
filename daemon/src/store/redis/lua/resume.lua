-- paused → sending. A pending run past its confirm deadline → expired
-- (lib_late.lua) and a conflict.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: now (µs)   ARGV[2]: who   ARGV[3]: now (text)
-- Returns: {seq, agenda, 'done' | current state | 'missing', run fields}
local run, now = KEYS[1], tonumber(ARGV[1])
if expire_if_late(run, now, ARGV[3]) then return finish(run, KEYS[2], now, true, 'expired') end
local state = redis.call('HGET', run, 'state')
if not state then return finish(run, KEYS[2], now, false, 'missing') end
if state ~= 'paused' then return finish(run, KEYS[2], now, false, state) end
redis.call('HSET', run, 'state', 'sending', 'resumed_by', ARGV[2], 'resumed_at', ARGV[3])
return finish(run, KEYS[2], now, true, 'done', redis.call('HGETALL', run))
