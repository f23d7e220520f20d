-- Records final outcomes: shared by record_outcomes.lua and record_last.lua.

-- Records the outcomes given as quads in ARGV[first..last] (recipient id,
-- outcome, outcome JSON, outcome instant in µs), set-if-absent; adds the
-- new ones only to `add` (run counter → how many more) and queues them for
-- their recipients' history (the indexer writes those keys, which live in
-- other slots, later). Returns how many outcomes were new.
local function record_into(outcomes, unindexed, first, last, add)
  local field = { delivered = 'delivered', bounced = 'bounced', failed = 'failed',
    cancelled = 'cancelled_n' }
  -- One HMGET and one HSET for the batch instead of an HSETNX per
  -- recipient: each redis.call and each propagated command costs more than
  -- the hash work it does (benches/README.md, P1).
  -- unpack() of more than about 8,000 values overflows Lua's C stack.
  local SLICE = 2000
  -- Counts the new outcome at ARGV[i..i+3] and returns its history queue entry.
  local function counted(i, id)
    local counter = field[ARGV[i + 1]]
    if counter then add[counter] = (add[counter] or 0) + 1 end
    return ARGV[i + 3] .. '\31' .. id
  end
  local ids, present = {}, {}
  for i = first, last, 4 do ids[#ids + 1] = ARGV[i] end
  -- One recipient (a one-recipient run's batch) is one HSETNX instead.
  if #ids == 1 then
    if redis.call('HSETNX', outcomes, ids[1], ARGV[first + 2]) == 0 then return 0 end
    redis.call('RPUSH', unindexed, counted(first, ids[1]))
    return 1
  end
  for from = 1, #ids, SLICE do
    local got = redis.call('HMGET', outcomes, unpack(ids, from, math.min(from + SLICE - 1, #ids)))
    for k = 1, #got do present[from + k - 1] = got[k] end
  end
  local set, seen, queued = {}, {}, {}
  for n, id in ipairs(ids) do
    -- The first of a recipient named twice wins, as HSETNX would have it.
    if not present[n] and not seen[id] then
      seen[id] = true
      local i = first + 4 * (n - 1)
      set[#set + 1] = id
      set[#set + 1] = ARGV[i + 2]
      queued[#queued + 1] = counted(i, id)
    end
  end
  for from = 1, #set, SLICE do
    redis.call('HSET', outcomes, unpack(set, from, math.min(from + SLICE - 1, #set)))
  end
  if #queued > 0 then redis.call('RPUSH', unindexed, table.concat(queued, '\30')) end
  return #queued
end

-- record_into, then the run's counters moved.
local function record(run, outcomes, unindexed, first, last)
  local add = {}
  local new = record_into(outcomes, unindexed, first, last, add)
  for counter, n in pairs(add) do
    redis.call('HINCRBY', run, counter, n)
  end
  return new
end

