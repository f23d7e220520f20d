-- Any state but final → cancelled; a pending run past its confirm deadline
-- → expired (lib_late.lua) and a conflict. A run that was sending or paused keeps
-- draining: its unfinished chunks are claimed to record `cancelled`.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: now (µs)   ARGV[2]: canceller or ''   ARGV[3]: reason   ARGV[4]: now (text)
-- Returns: {seq, agenda, 'done' | current state | 'missing', run fields}
local run, now = KEYS[1], tonumber(ARGV[1])
if expire_if_late(run, now, ARGV[4]) then return finish(run, KEYS[2], now, true, 'expired') end
local f = redis.call('HMGET', run, 'state', 'chunks', 'chunks_done')
local state = f[1]
if not state then return finish(run, KEYS[2], now, false, 'missing') end
if FINAL[state] then return finish(run, KEYS[2], now, false, state) end
redis.call('HSET', run, 'state', 'cancelled', 'cancelled_at', ARGV[4], 'cancel_reason', ARGV[3])
if ARGV[2] ~= '' then redis.call('HSET', run, 'cancelled_by', ARGV[2]) end
local draining = (state == 'sending' or state == 'paused')
  and tonumber(f[3]) < tonumber(f[2])
if draining then
  redis.call('HSET', run, 'drain', '1')
else
  redis.call('HSET', run, 'finished_at', ARGV[4])
end
return finish(run, KEYS[2], now, true, 'done', redis.call('HGETALL', run))
