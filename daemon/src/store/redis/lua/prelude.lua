-- Shared helpers, prepended to every run script (concatenated at build
-- time, so each script stays one atomic EVALSHA).
-- Instants are integer microseconds since the epoch (exact in a double).

-- The instant (µs) the run next needs work, or false when it needs none.
-- run: the run hash; leases: its lease ZSET; now: the caller's instant.
local function agenda_of(run, leases, now)
  local f = redis.call('HMGET', run, 'state', 'prep_until_us', 'deadline_us', 'sched_us',
    'chunks', 'next_chunk', 'chunks_done', 'drain')
  local state = f[1]
  if state == 'preparing' then
    local held = tonumber(f[2])
    if held and held > now then return held end
    return now
  elseif state == 'pending' then
    return tonumber(f[3])
  elseif state == 'scheduled' then
    return tonumber(f[4])
  elseif state == 'sending' or (state == 'cancelled' and f[8] == '1') then
    local chunks, nxt, done = tonumber(f[5]), tonumber(f[6]), tonumber(f[7])
    if done >= chunks then return false end
    if nxt < chunks then return now end
    local first = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
    if first[2] == nil then return false end
    local expiry = tonumber(first[2])
    if expiry < now then return now end
    return expiry
  end
  return false
end

-- Every run script's reply: {agenda seq, agenda instant or -1, ...}.
-- A change bumps the run's agenda sequence so that the caller's ZADD/ZREM
-- on the global agenda is applied only if no later change overtook it.
local function finish(run, leases, now, changed, ...)
  local seq
  if changed then
    seq = redis.call('HINCRBY', run, 'seq', 1)
  else
    seq = tonumber(redis.call('HGET', run, 'seq') or '0')
  end
  local at = agenda_of(run, leases, now)
  return {seq, at or -1, ...}
end

-- scheduled/pending/paused → sending; straight on to sent with no chunks.
local function begin_sending(run, now_text)
  redis.call('HSET', run, 'state', 'sending', 'started_at', now_text)
  if tonumber(redis.call('HGET', run, 'chunks')) == 0 then
    redis.call('HSET', run, 'state', 'sent', 'finished_at', now_text)
  end
end

local FINAL = { sent = true, cancelled = true, expired = true, failed = true }

-- A held chunk's member in the run's `:leases`: its number and its owner,
-- so that one command claims, checks or drops a lease (the owner hash kept
-- beside it until session 14 cost Redis two more commands and a key per
-- run: benches/README.md, P4). A chunk given back unfinished is its number
-- alone, with score -1.
local function lease_member(chunk, owner)
  return chunk .. '\31' .. owner
end
