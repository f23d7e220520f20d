-- Ends preparation: shared by finish_preparation.lua and finish_and_claim.lua.

-- Records the counts and preview, then moves the run to pending, scheduled
-- or sending. Returns 'done', the run's state when it is not this owner's
-- to end (no longer preparing, or another preparer took over), or 'missing'.
local function end_preparation(run, now, owner, targeted, excluded, chunks, preview, now_text)
  local f = redis.call('HMGET', run, 'state', 'prep_owner', 'prep_until_us', 'confirm_required', 'sched_us')
  if not f[1] then return 'missing' end
  if f[1] ~= 'preparing' then return f[1] end
  local held = tonumber(f[3])
  if f[2] and f[2] ~= owner and held and held >= now then
    -- Another preparer took over after our lease ran out: its result wins.
    return f[1]
  end
  redis.call('HDEL', run, 'prep_owner', 'prep_until_us')
  redis.call('HSET', run, 'targeted', targeted, 'excluded', excluded, 'chunks', chunks,
    'next_chunk', 0, 'chunks_done', 0)
  if preview ~= '' then redis.call('HSET', run, 'preview', preview) end
  if f[4] == '1' then
    redis.call('HSET', run, 'state', 'pending')
  elseif now >= tonumber(f[5]) then
    begin_sending(run, now_text)
  else
    redis.call('HSET', run, 'state', 'scheduled')
  end
  return 'done'
end

