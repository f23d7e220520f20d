-- The common end of a preparation, in one step, for one run or many:
-- writes the run's last chunk (put_chunk.lua), ends preparation
-- (finish_preparation.lua) and, when the run goes straight on to sending,
-- claims its first chunk (claim_chunk.lua). Each part behaves as its own
-- script would. Many runs per call only on one Redis server: on a Redis
-- Cluster the store calls it once per run, so its keys share the run's
-- slot.
-- KEYS[6i+1..6i+6]: run i's hash, leases, lease owners, chunk bodies,
--   chunk recipient ids, outcomes
-- ARGV[11i+1..11i+11]: run i's now (µs), owner, targeted, excluded JSON,
--   chunks, preview JSON or '', now (text), lease end (µs), last chunk's
--   number or '' (none), its JSON, its recipient ids
-- Returns one reply per run, in order: {seq, agenda, 'done' | 'started' |
--   current state | 'missing', run fields after preparation (empty unless
--   done), then as claim_chunk.lua: chunk number or -1, chunk JSON
--   ('' when 'started' claimed the chunk this call wrote), flags, 1 when
--   cancelled}. 'started': the common case below, where the run went from
--   the caller's preparation straight to sending, with exactly the fields
--   written here.
local function finish_and_claim(run, leases, owners, bodies, ids, outcomes, A)
  local now, owner, chunks, now_text, lease_end = tonumber(A[1]), A[2], tonumber(A[5]), A[7], A[8]

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
    if A[9] ~= '' then
      redis.call('HSET', bodies, A[9], A[10])
      redis.call('HSET', ids, A[9], A[11])
    end
    local seq = tonumber(f[6] or '0') + 1
    local fields = { 'targeted', A[3], 'excluded', A[4], 'chunks', A[5], 'next_chunk', 1,
      'chunks_done', 0, 'state', 'sending', 'started_at', now_text, 'seq', seq }
    if A[6] ~= '' then
      fields[#fields + 1] = 'preview'
      fields[#fields + 1] = A[6]
    end
    -- prep_owner and prep_until_us stay: they mean something only while
    -- the run is preparing, and deleting them cost a command per run.
    redis.call('HSET', run, unpack(fields))
    -- Neither the run nor a chunk the caller sent comes back: the caller
    -- knows what it wrote, and a run hash turned into a Lua table and
    -- back cost more than the rest (benches/README.md, P4 session 13).
    local written = A[9] == '0' and A[10] or nil
    local body, at = claim_first(leases, bodies, chunks, now, owner, lease_end, written)
    if written then body = '' end
    return {seq, at, 'started', {}, 0, body, '', 0}
  end

  -- The general steps.
  if A[9] ~= '' and f[1] == 'preparing' then
    redis.call('HSET', bodies, A[9], A[10])
    redis.call('HSET', ids, A[9], A[11])
  end
  local status = end_preparation(run, now, A[2], A[3], A[4], A[5], A[6], A[7])
  if status ~= 'done' then return finish(run, leases, now, false, status, {}, -1, '', '', 0) end
  local fields = redis.call('HGETALL', run)
  local c = claim_next(run, leases, owners, bodies, ids, outcomes, A[1], A[2], A[8])
  if not c then c = {-1, '', '', 0} end
  return finish(run, leases, now, true, 'done', fields, c[1], c[2], c[3], c[4])
end

local replies = {}
for i = 0, #KEYS / 6 - 1 do
  local k = 6 * i
  replies[#replies + 1] = finish_and_claim(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4],
    KEYS[k + 5], KEYS[k + 6], { unpack(ARGV, 11 * i + 1, 11 * i + 11) })
end
return replies
