-- Extends a chunk lease, only for the owner still holding it.
-- KEYS[1]: run leases
-- ARGV[1]: chunk number   ARGV[2]: owner   ARGV[3]: new lease end (µs)
-- Returns: 1 when extended, 0 when the lease was lost
local member = lease_member(ARGV[1], ARGV[2])
if not redis.call('ZSCORE', KEYS[1], member) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], member)
return 1
