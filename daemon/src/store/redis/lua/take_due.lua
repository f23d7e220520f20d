-- A due run's first step, for one run or many: reads each run and, when
-- it is `preparing`, takes the right to prepare it as
-- claim_preparation.lua does; when it is `scheduled` and its instant has
-- come, starts sending it as start_sending.lua does and claims its first
-- chunk as claim_chunk.lua would.
-- Many runs per call only on one Redis server: on a Redis Cluster the
-- store calls it once per run, so its keys share the run's slot. The call
-- itself cost Redis about half of what the script does for one run, and
-- thousands of runs can fall due at one instant (benches/README.md, P4).
-- KEYS[3i+1..3i+3]: run i's hash, leases, chunk bodies
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: lease end (µs)   ARGV[4]: now (text)
-- Returns one reply per run, in order: {seq, agenda, 'taken' | 'started' |
--   'found', then as claim_chunk.lua: chunk number or -1, chunk JSON,
--   flags, 1 when cancelled, then for 'started' what sending needs of the
--   run: id, delivery_id, channel, definition_hash, throttle_per_second,
--   scheduled_for, confirmed_at, chunks}
-- It returns no whole run: turning a run hash into a Lua table and back
-- cost Redis more than the rest of the script (the store reads a taken or
-- found run itself).
local now, owner, lease_end, now_text = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]

local function take(run, leases, bodies)
  -- One read of what every case needs: what sending needs of a run it
  -- starts comes with it (fields 7 to 13), one command fewer per run.
  local f = redis.call('HMGET', run, 'state', 'prep_owner', 'prep_until_us', 'sched_us', 'chunks', 'seq',
    'id', 'delivery_id', 'channel', 'definition_hash', 'throttle_per_second', 'scheduled_for',
    'confirmed_at')
  local held = tonumber(f[3])
  if f[1] == 'preparing' and not (f[2] and f[2] ~= owner and held and held >= now) then
    redis.call('HSET', run, 'prep_owner', owner, 'prep_until_us', lease_end)
    return finish(run, leases, now, true, 'taken', -1, '', '', 0)
  end
  if f[1] == 'scheduled' and now >= tonumber(f[4]) then
    -- The general steps' work in as few commands as it can: a scheduled
    -- run has never been sending, so its next chunk is 0, it holds no
    -- lease and none of its recipients has an outcome yet.
    local seq = tonumber(f[6] or '0') + 1
    local sending = { f[7], f[8], f[9], f[10], f[11], f[12], f[13], f[5] }
    if tonumber(f[5]) == 0 then
      redis.call('HSET', run, 'state', 'sent', 'started_at', now_text, 'finished_at', now_text, 'seq', seq)
      return {seq, -1, 'started', -1, '', '', 0, sending}
    end
    redis.call('HSET', run, 'state', 'sending', 'started_at', now_text, 'next_chunk', 1, 'seq', seq)
    local body, at = claim_first(leases, bodies, tonumber(f[5]), now, owner, lease_end)
    return {seq, at, 'started', 0, body, '', 0, sending}
  end
  return finish(run, leases, now, false, 'found', -1, '', '', 0)
end

local replies = {}
for i = 1, #KEYS, 3 do
  replies[#replies + 1] = take(KEYS[i], KEYS[i + 1], KEYS[i + 2])
end
return replies
