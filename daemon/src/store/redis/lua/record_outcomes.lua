-- Records final outcomes, set-if-absent, and moves the run's counters
-- for the new ones only.
-- KEYS[1]: run hash   KEYS[2]: outcomes (recipient id → outcome JSON)
-- ARGV[3i-2]: recipient id   ARGV[3i-1]: outcome   ARGV[3i]: outcome JSON
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
for i = 1, #ARGV, 3 do ids[#ids + 1] = ARGV[i] end
for from = 1, #ids, SLICE do
  local got = redis.call('HMGET', KEYS[2], unpack(ids, from, math.min(from + SLICE - 1, #ids)))
  for k = 1, #got do present[from + k - 1] = got[k] end
end
local add, set, seen, new = {}, {}, {}, 0
for n, id in ipairs(ids) do
  -- The first of a recipient named twice wins, as HSETNX would have it.
  if not present[n] and not seen[id] then
    seen[id] = true
    local i = 3 * n - 2
    set[#set + 1] = id
    set[#set + 1] = ARGV[i + 2]
    local counter = field[ARGV[i + 1]]
    if counter then add[counter] = (add[counter] or 0) + 1 end
    new = new + 1
  end
end
for from = 1, #set, SLICE do
  redis.call('HSET', KEYS[2], unpack(set, from, math.min(from + SLICE - 1, #set)))
end
for counter, n in pairs(add) do
  redis.call('HINCRBY', KEYS[1], counter, n)
end
return new
