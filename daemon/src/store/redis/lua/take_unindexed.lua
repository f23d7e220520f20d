-- Takes up to ARGV[1] queued batches of a run's new outcomes for the
-- history indexer, leaving out recipients whose outcome is gone (erased):
-- an erased entry is never written back.
-- KEYS[1]: the run's outcomes not yet in the history (list)
-- KEYS[2]: outcomes (recipient id → outcome JSON)
-- Returns: {batches left, recipient id, µs, recipient id, µs, ...}
local taken = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
local out = { 0 }
if taken then
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
