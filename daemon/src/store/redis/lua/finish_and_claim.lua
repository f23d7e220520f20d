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
local owner, chunks, now_text, lease_end = ARGV[2], tonumber(ARGV[5]), ARGV[7], ARGV[8]

-- The common case, a run this owner prepared that goes straight on to
-- sending, in as few commands as it allows (the general steps below
-- cost about twice as many): one read, one write of the run's fields,
-- and its first chunk claimed (claim_first: a run still preparing has
-- never been sending).
local f = redis.call('HMGET', run, 'state', 'prep_owner', 'prep_until_us', 'confirm_required',
  'sched_us', 'seq')
local held = tonumber(f[3])
local mine = f[1] == 'preparing' and not (f[2] and f[2] ~= owner and held and held >= now)
if mine and f[4] ~= '1' and now >= tonumber(f[5]) and chunks > 0 then
  if ARGV[9] ~= '' then
    redis.call('HSET', KEYS[4], ARGV[9], ARGV[10])
    redis.call('HSET', KEYS[5], ARGV[9], ARGV[11])
  end
  local seq = tonumber(f[6] or '0') + 1
  local fields = { 'targeted', ARGV[3], 'excluded', ARGV[4], 'chunks', ARGV[5], 'next_chunk', 1,
    'chunks_done', 0, 'state', 'sending', 'started_at', now_text, 'seq', seq }
  if ARGV[6] ~= '' then
    fields[#fields + 1] = 'preview'
    fields[#fields + 1] = ARGV[6]
  end
  redis.call('HDEL', run, 'prep_owner', 'prep_until_us')
  redis.call('HSET', run, unpack(fields))
  local after = redis.call('HGETALL', run)
  local written = ARGV[9] == '0' and ARGV[10] or nil
  local body, at = claim_first(leases, KEYS[3], KEYS[4], chunks, now, owner, lease_end, written)
  return {seq, at, 'done', after, 0, body, '', 0}
end

-- The general steps.
if ARGV[9] ~= '' and f[1] == 'preparing' then
  redis.call('HSET', KEYS[4], ARGV[9], ARGV[10])
  redis.call('HSET', KEYS[5], ARGV[9], ARGV[11])
end
local status = end_preparation(run, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if status ~= 'done' then return finish(run, leases, now, false, status, {}, -1, '', '', 0) end
local fields = redis.call('HGETALL', run)
local c = claim_next(run, leases, KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1], ARGV[2], ARGV[8])
if not c then c = {-1, '', '', 0} end
return finish(run, leases, now, true, 'done', fields, c[1], c[2], c[3], c[4])
