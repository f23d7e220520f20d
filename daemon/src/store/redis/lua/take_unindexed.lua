-- Takes up to ARGV[1] queued batches of a run's new outcomes for the
-- history indexer ARGV[2], leaving out recipients whose outcome is gone
-- (erased): an erased entry is never written back.
-- The batches taken stay in KEYS[3] under the indexer's lease until it
-- says they are written (done_indexing.lua): an indexer that crashed, or
-- whose writes failed, between taking and writing them loses nothing, as
-- they are taken again (by it at once, by another once the lease ends;
-- writing an entry twice is harmless).
-- KEYS[1]: the run's outcomes not yet in the history (list)
-- KEYS[2]: outcomes (recipient id → outcome JSON)
-- KEYS[3]: batches being indexed (hash: owner, until µs, batches)
-- ARGV: batches per call, indexer, now (µs), lease end (µs)
-- Returns: {batches left, taken (0: none, 1: some, whose entries follow,
--   2: another indexer holds batches of this run), recipient id, µs,
--   recipient id, µs, ...}
local held = redis.call('HMGET', KEYS[3], 'owner', 'until', 'batches')
local taken
if held[1] then
  if held[1] ~= ARGV[2] and tonumber(held[2]) > tonumber(ARGV[3]) then
    return { redis.call('LLEN', KEYS[1]), 2 }
  end
  taken = {}
  for batch in string.gmatch(held[3], '[^\29]+') do taken[#taken + 1] = batch end
  redis.call('HSET', KEYS[3], 'owner', ARGV[2], 'until', ARGV[4])
else
  taken = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
  if taken then
    redis.call('HSET', KEYS[3], 'owner', ARGV[2], 'until', ARGV[4],
      'batches', table.concat(taken, '\29'))
  end
end
local out = { 0, 0 }
if taken then
  out[2] = 1
  local ids, at = {}, {}
  for _, batch in ipairs(taken) do
    for entry in string.gmatch(batch, '[^\30]+') do
      local sep = string.find(entry, '\31', 1, true)
      at[#at + 1] = string.sub(entry, 1, sep - 1)
      ids[#ids + 1] = string.sub(entry, sep + 1)
    end
  end
  -- unpack() of more than about 8,000 values overflows Lua's C stack.
  for from = 1, #ids, 2000 do
    local last = math.min(from + 1999, #ids)
    local got = redis.call('HMGET', KEYS[2], unpack(ids, from, last))
    for k = 1, #got do
      if got[k] then
        out[#out + 1] = ids[from + k - 1]
        out[#out + 1] = at[from + k - 1]
      end
    end
  end
end
out[1] = redis.call('LLEN', KEYS[1])
return out
