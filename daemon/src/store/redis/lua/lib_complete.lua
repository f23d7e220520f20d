-- Completes a chunk: shared by complete_chunk.lua and record_last.lua.

-- The run fields completing a chunk reads: its state, its chunk counts,
-- its agenda sequence and the counters recording moves.
local COMPLETE_FIELDS = { 'state', 'chunks', 'chunks_done', 'seq',
  'delivered', 'bounced', 'failed', 'cancelled_n' }
local COUNTER_AT = { delivered = 5, bounced = 6, failed = 7, cancelled_n = 8 }

-- Appends to `args` each counter of `add` (field → how many more) at the
-- value it takes after the one read in `f`: the counters go out in the
-- run's one HSET instead of a HINCRBY each.
local function moved_counters(args, f, add)
  for counter, n in pairs(add) do
    args[#args + 1] = counter
    args[#args + 1] = tonumber(f[COUNTER_AT[counter]] or '0') + n
  end
  return args
end

-- Marks a claimed chunk finished; the last one ends the run. Returns the
-- run script's reply with 1 when completed, 0 when the caller does not
-- hold the chunk. chunk, owner, now_text: as the caller got them.
-- f: the run's COMPLETE_FIELDS when the caller read them already; add:
-- counters to move with it (record_last.lua), or nil.
-- Every run completes a chunk at least once, so this reads and writes the
-- run hash once each instead of through the general helpers.
local function complete(run, leases, chunk, owner, now, now_text, f, add)
  f = f or redis.call('HMGET', run, unpack(COMPLETE_FIELDS))
  add = add or {}
  -- The lease's member names its owner: removing it is the check.
  if redis.call('ZREM', leases, lease_member(chunk, owner)) == 0 then
    local counters = moved_counters({}, f, add)
    if #counters > 0 then redis.call('HSET', run, unpack(counters)) end
    return finish(run, leases, now, false, 0)
  end
  local done, seq = tonumber(f[3]) + 1, tonumber(f[4] or '0') + 1
  local fields = moved_counters({ 'chunks_done', done, 'seq', seq }, f, add)
  if done < tonumber(f[2]) then
    redis.call('HSET', run, unpack(fields))
    return {seq, agenda_of(run, leases, now) or -1, 1}
  end
  if f[1] == 'sending' or f[1] == 'paused' then
    fields[#fields + 1] = 'state'
    fields[#fields + 1] = 'sent'
    fields[#fields + 1] = 'finished_at'
    fields[#fields + 1] = now_text
    redis.call('HSET', run, unpack(fields))
  else
    redis.call('HSET', run, unpack(fields))
    if f[1] == 'cancelled' then redis.call('HSETNX', run, 'finished_at', now_text) end
  end
  -- No chunk left: agenda_of finds nothing to do in any state.
  return {seq, -1, 1}
end
