-- Records final outcomes, set-if-absent, moves the run's counters for the
-- new ones only, and queues the new ones for their recipients' history
-- (the indexer writes those keys, which live in other slots, later).
-- KEYS[1]: run hash   KEYS[2]: outcomes (recipient id → outcome JSON)
-- KEYS[3]: outcomes not yet in the history (list)
-- ARGV[4i-3]: recipient id   ARGV[4i-2]: outcome   ARGV[4i-1]: outcome JSON
-- ARGV[4i]: outcome instant (µs)
-- Returns: how many outcomes were new, or false when the run does not exist
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local field = { delivered = 'delivered', bounced = 'bounced', failed = 'failed',
  cancelled = 'cancelled_n' }
-- One HMGET and one HSET for the batch instead of an HSETNX per
-- recipient: each redis.call and each propagated command costs more than
-- the hash work it does (benches/README.md, P1).
-- unpack() of more than about 8,000 values overflows Lua's C stack.
local SLICE = 2000
local ids, present = {}, {}
for i = 1, #ARGV, 4 do ids[#ids + 1] = ARGV[i] end
for from = 1, #ids, SLICE do
  local got = redis.call('HMGET', KEYS[2], unpack(ids, from, math.min(from + SLICE - 1, #ids)))
  for k = 1, #got do present[from + k - 1] = got[k] end
end
local add, set, seen, queued = {}, {}, {}, {}
for n, id in ipairs(ids) do
  -- The first of a recipient named twice wins, as HSETNX would have it.
  if not present[n] and not seen[id] then
    seen[id] = true
    local i = 4 * n - 3
    set[#set + 1] = id
    set[#set + 1] = ARGV[i + 2]
    local counter = field[ARGV[i + 1]]
    if counter then add[counter] = (add[counter] or 0) + 1 end
    queued[#queued + 1] = ARGV[i + 3] .. '\31' .. id
  end
end
for from = 1, #set, SLICE do
  redis.call('HSET', KEYS[2], unpack(set, from, math.min(from + SLICE - 1, #set)))
end
for counter, n in pairs(add) do
  redis.call('HINCRBY', KEYS[1], counter, n)
end
if #queued > 0 then redis.call('RPUSH', KEYS[3], table.concat(queued, '\30')) end
return #queued
