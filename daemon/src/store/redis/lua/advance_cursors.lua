-- Moves delivery schedule cursors forward, never backward.
-- KEYS[1]: cursors (delivery id → "µs;text")
-- ARGV: triples of delivery id, instant (µs), instant (text)
-- Returns: how many cursors moved
local moved = 0
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if not (current and tonumber(string.match(current, '^(-?%d+);')) >= tonumber(ARGV[i + 1])) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1] .. ';' .. ARGV[i + 2])
    moved = moved + 1
  end
end
return moved
