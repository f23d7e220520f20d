-- Records final outcomes, set-if-absent, and moves the run's counters
-- for the new ones only.
-- KEYS[1]: run hash   KEYS[2]: outcomes (recipient id → outcome JSON)
-- ARGV[3i-2]: recipient id   ARGV[3i-1]: outcome   ARGV[3i]: outcome JSON
-- Returns: {channel, positions (1-based) of the newly recorded outcomes}, or
--   false when the run does not exist
local channel = redis.call('HGET', KEYS[1], 'channel')
if not channel then return false end
local field = { delivered = 'delivered', bounced = 'bounced', failed = 'failed',
  cancelled = 'cancelled_n' }
local add, new = {}, {}
for i = 1, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 2]) == 1 then
    local counter = field[ARGV[i + 1]]
    if counter then add[counter] = (add[counter] or 0) + 1 end
    new[#new + 1] = (i + 2) / 3
  end
end
for counter, n in pairs(add) do
  redis.call('HINCRBY', KEYS[1], counter, n)
end
return {channel, new}
