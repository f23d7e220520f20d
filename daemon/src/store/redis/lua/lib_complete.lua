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
  local done = redis.call('HINCRBY', run, 'chunks_done', 1)
  local f = redis.call('HMGET', run, 'state', 'chunks')
  if done >= tonumber(f[2]) then
    if f[1] == 'sending' or f[1] == 'paused' then
      redis.call('HSET', run, 'state', 'sent', 'finished_at', now_text)
    elseif f[1] == 'cancelled' then
      redis.call('HSETNX', run, 'finished_at', now_text)
    end
  end
  return finish(run, leases, now, true, 1)
end

