-- Moves a run that is not final to `failed`.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: now (µs)   ARGV[2]: reason   ARGV[3]: now (text)
-- Returns: {seq, agenda, 'done' | current state | 'missing', run fields}
local run, now = KEYS[1], tonumber(ARGV[1])
local state = redis.call('HGET', run, 'state')
if not state then return finish(run, KEYS[2], now, false, 'missing') end
if FINAL[state] then return finish(run, KEYS[2], now, false, state) end
redis.call('HSET', run, 'state', 'failed', 'failure', ARGV[2], 'finished_at', ARGV[3])
return finish(run, KEYS[2], now, true, 'done', redis.call('HGETALL', run))
