-- Extends a chunk lease, only for the owner still holding it.
-- KEYS[1]: run leases   KEYS[2]: lease owners
-- ARGV[1]: chunk number   ARGV[2]: owner   ARGV[3]: new lease end (µs)
-- Returns: 1 when extended, 0 when the lease was lost
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
