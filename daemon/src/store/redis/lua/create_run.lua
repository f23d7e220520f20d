-- Creates runs in `preparing`, one or many, each unless one with its id
-- exists. Many runs per call only on one Redis server: on a Redis Cluster
-- the store calls it once per run, so its keys share the run's slot.
-- KEYS[3i+1..3i+3]: run i's hash, leases, definition snapshot
-- ARGV[1]: 'again' when this is one run of a call that failed, sent
--   again alone, else ''
-- ARGV, then per run in turn: now (µs), definition JSON, n, then n run
--   hash fields and values (state `preparing`, and prep_owner,
--   prep_until_us when taken)
-- Returns one reply per run, in order: {seq, agenda, 'created' | 'exists'}
--   ('created' too for the same creation sent again, below)
local function create(run, leases, snapshot, now, definition, first, last)
  local fields, held = { unpack(ARGV, first, last) }, nil
  if redis.call('EXISTS', run) == 1 then
    if ARGV[1] ~= 'again' then return finish(run, leases, now, false, 'exists') end
    -- This very creation again (sent alone after another run's error
    -- stopped the call it was in midway) gets its first answer again:
    -- same creator's instant, same preparation lease.
    local asked = {}
    for i = 1, #fields, 2 do asked[fields[i]] = fields[i + 1] end
    local f = redis.call('HMGET', run, 'created_at', 'prep_owner', 'prep_until_us')
    local same = f[1] == asked.created_at and f[2] == (asked.prep_owner or false)
      and f[3] == (asked.prep_until_us or false)
    return finish(run, leases, now, false, same and 'created' or 'exists')
  end
  -- The new run's sequence and agenda instant as finish and agenda_of
  -- would find them, from the fields rather than read back after writing
  -- them: a run preparing is due at once, or when the preparation taken
  -- with it ends. Two commands fewer for every run created.
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

local replies, at = {}, 2
for i = 1, #KEYS, 3 do
  local now, definition, n = tonumber(ARGV[at]), ARGV[at + 1], tonumber(ARGV[at + 2])
  local first = at + 3
  local last = first + 2 * n - 1
  at = last + 1
  replies[#replies + 1] = create(KEYS[i], KEYS[i + 1], KEYS[i + 2], now, definition, first, last)
end
return replies
