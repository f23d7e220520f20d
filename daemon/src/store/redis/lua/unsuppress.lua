-- Lifts an address from a suppression list.
-- KEYS[1]: list (address → entry JSON)   KEYS[2]: list index (ZSET by address)
-- ARGV[1]: address
-- Returns: 1 when lifted, 0 when it was not there
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
