-- Counts a soft bounce; quarantines the address at the threshold.
-- KEYS[1]: soft-bounce counts (address → n)   KEYS[2]: quarantine list   KEYS[3]: its index
-- ARGV[1]: address   ARGV[2]: threshold   ARGV[3]: quarantine entry JSON
-- Returns: 1 when this bounce quarantined the address, else 0
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n < tonumber(ARGV[2]) then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return 1
