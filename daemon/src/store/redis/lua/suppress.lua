-- Puts an address on a suppression list, keeping the first entry.
-- KEYS[1]: list (address → entry JSON)   KEYS[2]: list index (ZSET by address)
-- ARGV[1]: address   ARGV[2]: entry JSON
-- Returns: 1 when added, 0 when it was already there
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
