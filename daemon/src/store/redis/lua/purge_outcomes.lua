-- One retention step of a finished run: removes these recipients'
-- outcomes and tracking records (their history entries were archived
-- first), drops the preview and marks the run. Counters stay.
-- KEYS[1]: run hash   KEYS[2]: outcomes   KEYS[3]: openers   KEYS[4]: clickers
-- KEYS[5]: unsubscribers
-- ARGV: recipient ids
-- Returns: outcomes left, or -1 when the run is missing or not finished
local f = redis.call('HMGET', KEYS[1], 'state', 'finished_at', 'drain')
if not FINAL[f[1]] or not f[2] or f[3] == '1' then return -1 end
redis.call('HSET', KEYS[1], 'outcomes_purged', '1')
redis.call('HDEL', KEYS[1], 'preview')
if #ARGV > 0 then
  redis.call('HDEL', KEYS[2], unpack(ARGV))
  for k = 3, 5 do redis.call('SREM', KEYS[k], unpack(ARGV)) end
end
return redis.call('HLEN', KEYS[2])
