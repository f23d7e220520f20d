-- A due run's first step, in one: reads the run and, when it is
-- `preparing`, takes the right to prepare it as claim_preparation.lua
-- does; when it is `scheduled` and its instant has come, starts sending it
-- as start_sending.lua does and claims a chunk as claim_chunk.lua does.
-- KEYS[1]: run hash   KEYS[2]: run leases   KEYS[3]: lease owners
-- KEYS[4]: chunk bodies   KEYS[5]: chunk recipient ids   KEYS[6]: outcomes
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: lease end (µs)   ARGV[4]: now (text)
-- Returns: {seq, agenda, 'taken' | 'started' | 'found', run fields (empty: no run),
--   then as claim_chunk.lua: chunk number or -1, chunk JSON, flags, 1 when cancelled}
local run, leases, now = KEYS[1], KEYS[2], tonumber(ARGV[1])
local f = redis.call('HMGET', run, 'state', 'prep_owner', 'prep_until_us', 'sched_us')
local held = tonumber(f[3])
if f[1] == 'preparing' and not (f[2] and f[2] ~= ARGV[2] and held and held >= now) then
  redis.call('HSET', run, 'prep_owner', ARGV[2], 'prep_until_us', ARGV[3])
  return finish(run, leases, now, true, 'taken', redis.call('HGETALL', run), -1, '', '', 0)
end
if f[1] == 'scheduled' and now >= tonumber(f[4]) then
  begin_sending(run, ARGV[4])
  local fields = redis.call('HGETALL', run)
  local c = claim_next(run, leases, KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1], ARGV[2], ARGV[3])
  if not c then c = {-1, '', '', 0} end
  return finish(run, leases, now, true, 'started', fields, c[1], c[2], c[3], c[4])
end
return finish(run, leases, now, false, 'found', redis.call('HGETALL', run), -1, '', '', 0)
