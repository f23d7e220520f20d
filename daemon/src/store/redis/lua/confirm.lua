-- pending → scheduled, or sending when its instant has come; past its
-- confirm deadline → expired (lib_late.lua) and a conflict.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: now (µs)   ARGV[2]: confirmer   ARGV[3]: now (text)
-- Returns: {seq, agenda, 'done' | current state | 'missing', run fields}
local run, now = KEYS[1], tonumber(ARGV[1])
if expire_if_late(run, now, ARGV[3]) then return finish(run, KEYS[2], now, true, 'expired') end
local f = redis.call('HMGET', run, 'state', 'sched_us')
if not f[1] then return finish(run, KEYS[2], now, false, 'missing') end
if f[1] ~= 'pending' then return finish(run, KEYS[2], now, false, f[1]) end
redis.call('HSET', run, 'confirmed_by', ARGV[2], 'confirmed_at', ARGV[3])
if now >= tonumber(f[2]) then
  begin_sending(run, ARGV[3])
else
  redis.call('HSET', run, 'state', 'scheduled')
end
return finish(run, KEYS[2], now, true, 'done', redis.call('HGETALL', run))
