-- Moves a delivery's schedule cursor forward, never backward.
-- KEYS[1]: cursors (delivery id → "µs;text")
-- ARGV[1]: delivery id   ARGV[2]: instant (µs)   ARGV[3]: instant (text)
-- Returns: 1 when moved, 0 when the cursor was already there or later
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and tonumber(string.match(current, '^(-?%d+);')) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ';' .. ARGV[3])
return 1
