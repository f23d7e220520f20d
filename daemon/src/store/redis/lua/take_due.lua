-- A due run's first step, in one: reads the run and, when it is
-- `preparing`, takes the right to prepare it as claim_preparation.lua
-- does; when it is `scheduled` and its instant has come, starts sending it
-- as start_sending.lua does and claims its first chunk as claim_chunk.lua
-- would.
-- KEYS[1]: run hash   KEYS[2]: run leases   KEYS[3]: lease owners
-- KEYS[4]: chunk bodies   KEYS[5]: chunk recipient ids   KEYS[6]: outcomes
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: lease end (µs)   ARGV[4]: now (text)
-- Returns: {seq, agenda, 'taken' | 'started' | 'found', then as
--   claim_chunk.lua: chunk number or -1, chunk JSON, flags, 1 when cancelled,
--   then for 'started' what sending needs of the run: id, delivery_id,
--   channel, definition_hash, throttle_per_second, scheduled_for,
--   confirmed_at, chunks}
-- It returns no whole run: turning a run hash into a Lua table and back
-- cost Redis more than the rest of the script (the store reads a taken or
-- found run itself).
local run, leases, now = KEYS[1], KEYS[2], tonumber(ARGV[1])
local f = redis.call('HMGET', run, 'state', 'prep_owner', 'prep_until_us', 'sched_us', 'chunks', 'seq')
local held = tonumber(f[3])
if f[1] == 'preparing' and not (f[2] and f[2] ~= ARGV[2] and held and held >= now) then
  redis.call('HSET', run, 'prep_owner', ARGV[2], 'prep_until_us', ARGV[3])
  return finish(run, leases, now, true, 'taken', -1, '', '', 0)
end
if f[1] == 'scheduled' and now >= tonumber(f[4]) then
  -- Thousands of runs can fall due at one instant, and this is the first
  -- of the two scripts each runs then, so it does the general steps'
  -- work in as few commands as it can (benches/README.md, P4): a
  -- scheduled run has never been sending, so its next chunk is 0, it
  -- holds no lease and none of its recipients has an outcome yet.
  local seq = tonumber(f[6] or '0') + 1
  local sending = redis.call('HMGET', run, 'id', 'delivery_id', 'channel', 'definition_hash',
    'throttle_per_second', 'scheduled_for', 'confirmed_at')
  sending[8] = f[5]
  if tonumber(f[5]) == 0 then
    redis.call('HSET', run, 'state', 'sent', 'started_at', ARGV[4], 'finished_at', ARGV[4], 'seq', seq)
    return {seq, -1, 'started', -1, '', '', 0, sending}
  end
  redis.call('HSET', run, 'state', 'sending', 'started_at', ARGV[4], 'next_chunk', 1, 'seq', seq)
  redis.call('ZADD', leases, ARGV[3], 0)
  redis.call('HSET', KEYS[3], 0, ARGV[2])
  local body = redis.call('HGET', KEYS[4], 0) or ''
  -- The agenda as agenda_of would find it: other chunks to claim now, or
  -- this chunk's lease, the only one, ending.
  local at = tonumber(f[5]) > 1 and now or tonumber(ARGV[3])
  return {seq, at, 'started', 0, body, '', 0, sending}
end
return finish(run, leases, now, false, 'found', -1, '', '', 0)
