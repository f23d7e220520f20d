-- Last retention step of a finished run whose outcomes are gone: drops
-- its frozen audience, tracking records, leases and preview. UNLINK frees
-- big values off the main thread, so this never blocks Redis.
-- KEYS[1]: run hash   KEYS[2..]: the run's chunks, chunk ids, openers,
--   clickers, unsubscribers, leases, owners, outcomes queued for the history,
--   batches being indexed
-- Returns: 1, or -1 when the run is missing or not finished
local f = redis.call('HMGET', KEYS[1], 'state', 'finished_at', 'drain')
if not FINAL[f[1]] or not f[2] or f[3] == '1' then return -1 end
redis.call('HSET', KEYS[1], 'outcomes_purged', '1', 'purged', '1')
redis.call('HDEL', KEYS[1], 'preview')
for k = 2, #KEYS do redis.call('UNLINK', KEYS[k]) end
return 1
