-- Rebuilds a run's counters from its outcome and tracking records.
-- KEYS[1]: run hash   KEYS[2]: outcomes   KEYS[3]: openers   KEYS[4]: clickers
-- KEYS[5]: unsubscribers
-- Returns: the run's fields (HGETALL) after the recount, or false when absent
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if redis.call('HGET', KEYS[1], 'outcomes_purged') ~= '1' then
  local n = { delivered = 0, bounced = 0, failed = 0, cancelled = 0 }
  for _, record in ipairs(redis.call('HVALS', KEYS[2])) do
    -- Inside JSON strings quotes are escaped, so this only matches the key.
    local outcome = string.match(record, '"outcome":"(%a+)"')
    if n[outcome] then n[outcome] = n[outcome] + 1 end
  end
  redis.call('HSET', KEYS[1], 'delivered', n.delivered, 'bounced', n.bounced,
    'failed', n.failed, 'cancelled_n', n.cancelled,
    'opened', redis.call('SCARD', KEYS[3]), 'clicked', redis.call('SCARD', KEYS[4]),
    'unsubscribed', redis.call('SCARD', KEYS[5]))
end
return redis.call('HGETALL', KEYS[1])
