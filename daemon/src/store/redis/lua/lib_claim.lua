-- Claims a chunk: shared by claim_chunk.lua and finish_and_claim.lua.

-- Claims the lowest chunk that is unclaimed or whose lease expired, of a
-- sending run or of a cancelled run that still drains.
-- now_us and lease_end: µs as text (exact: a Lua number prints rounded).
-- Returns {chunk number, chunk JSON, per-recipient '1' when it already has
-- an outcome else '0', 1 when cancelled}, or nil when there is none.
local function claim_next(run, leases, owners, bodies, ids, outcomes, now_us, owner, lease_end)
  local f = redis.call('HMGET', run, 'state', 'drain', 'chunks', 'next_chunk')
  local cancelled = f[1] == 'cancelled' and f[2] == '1'
  if f[1] ~= 'sending' and not cancelled then return nil end
  local pick, held
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', '(' .. now_us)) do
    local n = tonumber(string.match(m, '^%d+'))
    if not pick or n < pick then pick, held = n, m end
  end
  local nxt = tonumber(f[4])
  local fresh = false
  if nxt < tonumber(f[3]) and (not pick or nxt < pick) then
    pick, held, fresh = nxt, nil, true
    redis.call('HSET', run, 'next_chunk', nxt + 1)
  end
  if not pick then return nil end
  if held then
    redis.call('ZREM', leases, held)
    -- A member without an owner is a chunk given back, or a lease taken
    -- by a daemon from before owners lived in the member, whose owner
    -- hash entry goes too: that tells such a daemon it lost the chunk.
    if held == tostring(pick) then redis.call('HDEL', owners, pick) end
  end
  redis.call('ZADD', leases, lease_end, lease_member(pick, owner))
  local body = redis.call('HGET', bodies, pick) or ''
  local flags = {}
  -- Only a reclaimed chunk can hold recipients with outcomes already.
  if not fresh then
    for id in string.gmatch(redis.call('HGET', ids, pick) or '', '[^\31]+') do
      flags[#flags + 1] = redis.call('HEXISTS', outcomes, id)
    end
  end
  return {pick, body, table.concat(flags), cancelled and 1 or 0}
end

-- Claims chunk 0 of a run that has never been sending, as claim_next
-- would, in one write: such a run holds no lease, chunk 0 is its next
-- and none of its recipients has an outcome. body: chunk 0's JSON when
-- the caller has it (else read). Returns that JSON and the run's agenda
-- instant as agenda_of would find it: other chunks to claim now, or this
-- chunk's lease, the only one, ending.
local function claim_first(leases, bodies, chunks, now, owner, lease_end, body)
  redis.call('ZADD', leases, lease_end, lease_member(0, owner))
  body = body or redis.call('HGET', bodies, 0) or ''
  return body, (chunks > 1 and now or tonumber(lease_end))
end
