-- Drops a recipient's history entries recorded before the cutoff.
-- KEYS[1]: the recipient's history
-- ARGV[1]: cutoff (µs, exclusive)
-- Returns: {entries removed, oldest instant left (µs) or -1}
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] == nil then return {removed, '-1'} end
return {removed, first[2]}
