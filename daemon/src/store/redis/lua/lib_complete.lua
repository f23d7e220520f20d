-- Completes a chunk: shared by complete_chunk.lua and record_last.lua.

-- Marks a claimed chunk finished; the last one ends the run. Returns the
-- run script's reply with 1 when completed, 0 when the caller does not
-- hold the chunk. chunk, owner, now_text: as the caller got them.
local function complete(run, leases, owners, chunk, owner, now, now_text)
  if redis.call('HGET', owners, chunk) ~= owner
    or not redis.call('ZSCORE', leases, chunk) then
    return finish(run, leases, now, false, 0)
  end
  redis.call('ZREM', leases, chunk)
  redis.call('HDEL', owners, chunk)
  -- Every run completes a chunk at least once, so this reads and writes
  -- the run hash once each instead of through the general helpers.
  local f = redis.call('HMGET', run, 'state', 'chunks', 'chunks_done', 'seq')
  local done, seq = tonumber(f[3]) + 1, tonumber(f[4] or '0') + 1
  if done < tonumber(f[2]) then
    redis.call('HSET', run, 'chunks_done', done, 'seq', seq)
    return {seq, agenda_of(run, leases, now) or -1, 1}
  end
  if f[1] == 'sending' or f[1] == 'paused' then
    redis.call('HSET', run, 'chunks_done', done, 'seq', seq, 'state', 'sent', 'finished_at', now_text)
  else
    redis.call('HSET', run, 'chunks_done', done, 'seq', seq)
    if f[1] == 'cancelled' then redis.call('HSETNX', run, 'finished_at', now_text) end
  end
  -- No chunk left: agenda_of finds nothing to do in any state.
  return {seq, -1, 1}
end
