-- The history indexer ARGV[1] wrote the batches it took
-- (take_unindexed.lua): they go, unless another indexer took them over
-- after the lease ended (its own writes are then under way).
-- KEYS[1]: batches being indexed (hash: owner, until µs, batches)
-- Returns: 1 when they went, 0 when another indexer holds them
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
