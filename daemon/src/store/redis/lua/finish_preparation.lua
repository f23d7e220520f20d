-- Ends preparation: counts, preview, then pending, scheduled or sending.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: targeted   ARGV[4]: excluded JSON
-- ARGV[5]: chunks   ARGV[6]: preview JSON or ''   ARGV[7]: now (text)
-- Returns: {seq, agenda, 'done' | current state | 'missing', run fields}
local run, now = KEYS[1], tonumber(ARGV[1])
local status = end_preparation(run, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if status ~= 'done' then return finish(run, KEYS[2], now, false, status) end
return finish(run, KEYS[2], now, true, 'done', redis.call('HGETALL', run))
