-- Applies run scripts' agenda instants to the global agenda, each unless a
-- later change of the same run was applied already. Many runs per call:
-- the store gathers the instants of concurrent run scripts.
-- KEYS[1]: agenda ZSET (run id → µs)   KEYS[2]: applied sequences (run id → seq)
-- ARGV[3i+1]: run id   ARGV[3i+2]: the run's agenda sequence   ARGV[3i+3]: instant (µs) or -1 to remove
-- Returns: how many were applied (not overtaken)
-- A handful of commands per call, not three per instant: each redis.call
-- cost Redis more than the work it does on a hash or sorted set, and a
-- burst of one-recipient runs applies two instants per run
-- (benches/README.md, P4 session 9). The result is the one applying the
-- instants one by one, in order, would leave.
-- unpack() of more than about 8,000 values overflows Lua's C stack.
local SLICE = 2000
local ids = {}
for i = 1, #ARGV, 3 do ids[#ids + 1] = ARGV[i] end
local stored = {}
for from = 1, #ids, SLICE do
  local got = redis.call('HMGET', KEYS[2], unpack(ids, from, math.min(from + SLICE - 1, #ids)))
  for k = 1, #got do stored[from + k - 1] = got[k] end
end
-- The same run may come twice in one call: the later applied wins.
local seq_of, at_of, order = {}, {}, {}
local applied_n = 0
for k, id in ipairs(ids) do
  local seq, at = tonumber(ARGV[3 * k - 1]), tonumber(ARGV[3 * k])
  local applied = seq_of[id] or tonumber(stored[k] or '-1')
  if seq >= applied then
    if seq_of[id] == nil then order[#order + 1] = id end
    seq_of[id], at_of[id] = seq, at
    applied_n = applied_n + 1
  end
end
local seqs, adds, removes = {}, {}, {}
for _, id in ipairs(order) do
  seqs[#seqs + 1] = id
  seqs[#seqs + 1] = seq_of[id]
  if at_of[id] < 0 then
    removes[#removes + 1] = id
  else
    adds[#adds + 1] = at_of[id]
    adds[#adds + 1] = id
  end
end
for from = 1, #seqs, SLICE do
  redis.call('HSET', KEYS[2], unpack(seqs, from, math.min(from + SLICE - 1, #seqs)))
end
for from = 1, #adds, SLICE do
  redis.call('ZADD', KEYS[1], unpack(adds, from, math.min(from + SLICE - 1, #adds)))
end
for from = 1, #removes, SLICE do
  redis.call('ZREM', KEYS[1], unpack(removes, from, math.min(from + SLICE - 1, #removes)))
end
return applied_n
