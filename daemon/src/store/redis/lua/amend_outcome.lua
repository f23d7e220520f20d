-- Turns a `delivered` outcome into `bounced` or `failed` (later feedback).
-- The outcome keeps its `at`, which orders the recipient's history.
-- KEYS[1]: run hash   KEYS[2]: outcomes
-- ARGV[1]: recipient id   ARGV[2]: new outcome   ARGV[3]: detail
-- Returns: the outcome JSON now recorded, or false for an unknown recipient
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current then return false end
local record = cjson.decode(current)
local to = ARGV[2]
if record.outcome ~= 'delivered' or (to ~= 'bounced' and to ~= 'failed') then
  return current
end
record.outcome, record.detail = to, ARGV[3]
local encoded = cjson.encode(record)
redis.call('HSET', KEYS[2], ARGV[1], encoded)
redis.call('HINCRBY', KEYS[1], 'delivered', -1)
redis.call('HINCRBY', KEYS[1], to, 1)
return encoded
