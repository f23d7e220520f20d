-- Creates runs in `preparing`, one or many, each unless one with its id
-- exists. Many runs per call only on one Redis server: on a Redis Cluster
-- the store calls it once per run, so its keys share the run's slot.
-- KEYS[3i+1..3i+3]: run i's hash, leases, definition snapshot
-- ARGV, per run in turn: now (µs), definition JSON, n, then n run hash
--   fields and values (state `preparing`, and prep_owner, prep_until_us
--   when taken)
-- Returns one reply per run, in order: {seq, agenda, 'created' | 'exists'}
local function create(run, leases, snapshot, now, definition, first, last)
  if redis.call('EXISTS', run) == 1 then
    return finish(run, leases, now, false, 'exists')
  end
  -- The new run's sequence and agenda instant as finish and agenda_of
  -- would find them, from the fields rather than read back after writing
  -- them: a run preparing is due at once, or when the preparation taken
  -- with it ends. Two commands fewer for every run created.
  local fields, held = { unpack(ARGV, first, last) }, nil
  for i = 1, #fields, 2 do
    if fields[i] == 'prep_until_us' then held = tonumber(fields[i + 1]) end
  end
  fields[#fields + 1] = 'seq'
  fields[#fields + 1] = 1
  redis.call('HSET', run, unpack(fields))
  redis.call('SET', snapshot, definition)
  if held and held > now then return {1, held, 'created'} end
  return {1, now, 'created'}
end

local replies, at = {}, 1
for i = 1, #KEYS, 3 do
  local now, definition, n = tonumber(ARGV[at]), ARGV[at + 1], tonumber(ARGV[at + 2])
  local first = at + 3
  local last = first + 2 * n - 1
  at = last + 1
  replies[#replies + 1] = create(KEYS[i], KEYS[i + 1], KEYS[i + 2], now, definition, first, last)
end
return replies
