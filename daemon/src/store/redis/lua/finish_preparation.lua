-- Ends preparation: counts, preview, then pending, scheduled or sending.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: targeted   ARGV[4]: excluded JSON
-- ARGV[5]: chunks   ARGV[6]: preview JSON or ''   ARGV[7]: now (text)
-- Returns: {seq, agenda, 'done' | current state | 'missing', run fields}
local run, now = KEYS[1], tonumber(ARGV[1])
local f = redis.call('HMGET', run, 'state', 'prep_owner', 'prep_until_us', 'confirm_required', 'sched_us')
if not f[1] then return finish(run, KEYS[2], now, false, 'missing') end
if f[1] ~= 'preparing' then return finish(run, KEYS[2], now, false, f[1]) end
local held = tonumber(f[3])
if f[2] and f[2] ~= ARGV[2] and held and held >= now then
  -- Another preparer took over after our lease ran out: its result wins.
  return finish(run, KEYS[2], now, false, f[1])
end
redis.call('HDEL', run, 'prep_owner', 'prep_until_us')
redis.call('HSET', run, 'targeted', ARGV[3], 'excluded', ARGV[4], 'chunks', ARGV[5],
  'next_chunk', 0, 'chunks_done', 0)
if ARGV[6] ~= '' then redis.call('HSET', run, 'preview', ARGV[6]) end
if f[4] == '1' then
  redis.call('HSET', run, 'state', 'pending')
elseif now >= tonumber(f[5]) then
  begin_sending(run, ARGV[7])
else
  redis.call('HSET', run, 'state', 'scheduled')
end
return finish(run, KEYS[2], now, true, 'done', redis.call('HGETALL', run))
