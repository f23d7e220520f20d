-- Records tracking events, unique per recipient and kind; a click or an
-- unsubscribe implies an open (kpis.md: `opened` counts any tracked
-- action). Moves the opened/clicked/unsubscribed counters by the new ones.
-- Once the run's rows were purged or a recipient erased, only recipients
-- whose outcome is still recorded count: an erased one is not written back.
-- KEYS[1]: run hash   KEYS[2]: openers   KEYS[3]: clickers   KEYS[4]: unsubscribers
-- KEYS[5]: outcomes
-- ARGV[2i-1]: recipient id   ARGV[2i]: 'open' | 'click' | 'unsubscribe'
-- Returns: 1, or 0 when the run does not exist (nothing written)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local purged = redis.call('HGET', KEYS[1], 'outcomes_purged') == '1'
local opened, clicked, unsubscribed = 0, 0, 0
for i = 1, #ARGV, 2 do
  local id, kind = ARGV[i], ARGV[i + 1]
  if purged and redis.call('HEXISTS', KEYS[5], id) == 0 then
    kind = 'erased'
  end
  if kind == 'click' then
    clicked = clicked + redis.call('SADD', KEYS[3], id)
    opened = opened + redis.call('SADD', KEYS[2], id)
  elseif kind == 'open' then
    opened = opened + redis.call('SADD', KEYS[2], id)
  elseif kind == 'unsubscribe' then
    unsubscribed = unsubscribed + redis.call('SADD', KEYS[4], id)
    opened = opened + redis.call('SADD', KEYS[2], id)
  end
end
redis.call('HINCRBY', KEYS[1], 'opened', opened)
redis.call('HINCRBY', KEYS[1], 'clicked', clicked)
redis.call('HINCRBY', KEYS[1], 'unsubscribed', unsubscribed)
return 1
