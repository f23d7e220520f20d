-- Creates a run in `preparing` unless one with this id exists.
-- KEYS[1]: run hash   KEYS[2]: run leases   KEYS[3]: definition snapshot
-- ARGV[1]: now (µs)   ARGV[2]: definition JSON   ARGV[3..]: run hash fields and values
--   (state `preparing`, seq 0, and prep_owner, prep_until_us when taken)
-- Returns: {seq, agenda, 'created' | 'exists'}
local now = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  return finish(KEYS[1], KEYS[2], now, false, 'exists')
end
-- The new run's sequence and agenda instant as finish and agenda_of would
-- find them, from the fields rather than read back after writing them: a
-- run preparing is due at once, or when the preparation taken with it
-- ends. Two commands fewer for every run created.
local fields, held = { unpack(ARGV, 3) }, nil
for i = 1, #fields, 2 do
  if fields[i] == 'prep_until_us' then held = tonumber(fields[i + 1]) end
end
fields[#fields + 1] = 'seq'
fields[#fields + 1] = 1
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SET', KEYS[3], ARGV[2])
if held and held > now then return {1, held, 'created'} end
return {1, now, 'created'}
