-- The common end of a preparation, in one step: writes the run's last
-- chunk (put_chunk.lua), ends preparation (finish_preparation.lua) and,
-- when the run goes straight on to sending, claims its first chunk
-- (claim_chunk.lua). Each part behaves as its own script would.
-- KEYS[1]: run hash   KEYS[2]: run leases   KEYS[3]: lease owners
-- KEYS[4]: chunk bodies   KEYS[5]: chunk recipient ids   KEYS[6]: outcomes
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: targeted   ARGV[4]: excluded JSON
-- ARGV[5]: chunks   ARGV[6]: preview JSON or ''   ARGV[7]: now (text)   ARGV[8]: lease end (µs)
-- ARGV[9]: last chunk's number or '' (none)   ARGV[10]: its JSON   ARGV[11]: its recipient ids
-- Returns: {seq, agenda, 'done' | current state | 'missing', run fields after preparation
--   (empty unless done), then as claim_chunk.lua: chunk number or -1, chunk JSON, flags,
--   1 when cancelled}
local run, leases, now = KEYS[1], KEYS[2], tonumber(ARGV[1])
if ARGV[9] ~= '' and redis.call('HGET', run, 'state') == 'preparing' then
  redis.call('HSET', KEYS[4], ARGV[9], ARGV[10])
  redis.call('HSET', KEYS[5], ARGV[9], ARGV[11])
end
local status = end_preparation(run, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if status ~= 'done' then return finish(run, leases, now, false, status, {}, -1, '', '', 0) end
local fields = redis.call('HGETALL', run)
local c = claim_next(run, leases, KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1], ARGV[2], ARGV[8])
if not c then c = {-1, '', '', 0} end
return finish(run, leases, now, true, 'done', fields, c[1], c[2], c[3], c[4])
