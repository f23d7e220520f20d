-- Gives a claimed chunk back unfinished: claimable at once.
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: chunk number   ARGV[2]: owner
-- Returns: {seq, agenda, 1 when released | 0 when the caller does not hold it}
local run, leases = KEYS[1], KEYS[2]
-- No clock here: an agenda instant of 0 means "due at once".
if redis.call('ZREM', leases, lease_member(ARGV[1], ARGV[2])) == 0 then
  return finish(run, leases, 0, false, 0)
end
redis.call('ZADD', leases, -1, ARGV[1])
return finish(run, leases, 0, true, 1)
