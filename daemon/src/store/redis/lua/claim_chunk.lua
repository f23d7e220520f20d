-- Claims the lowest chunk that is unclaimed or whose lease expired, of a
-- sending run or of a cancelled run that still drains.
-- KEYS[1]: run hash   KEYS[2]: run leases (chunk → lease end)   KEYS[3]: lease owners
-- KEYS[4]: chunk bodies   KEYS[5]: chunk recipient ids   KEYS[6]: outcomes
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: lease end (µs)
-- Returns: {seq, agenda, chunk number or -1, chunk JSON, per-recipient '1' when it
--   already has an outcome else '0', 1 when cancelled}
local run, leases, now = KEYS[1], KEYS[2], tonumber(ARGV[1])
local f = redis.call('HMGET', run, 'state', 'drain', 'chunks', 'next_chunk')
local cancelled = f[1] == 'cancelled' and f[2] == '1'
if f[1] ~= 'sending' and not cancelled then
  return finish(run, leases, now, false, -1)
end
local pick
for _, c in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', '(' .. ARGV[1])) do
  local n = tonumber(c)
  if not pick or n < pick then pick = n end
end
local nxt = tonumber(f[4])
local fresh = false
if nxt < tonumber(f[3]) and (not pick or nxt < pick) then
  pick, fresh = nxt, true
  redis.call('HSET', run, 'next_chunk', nxt + 1)
end
if not pick then return finish(run, leases, now, false, -1) end
redis.call('ZADD', leases, ARGV[3], pick)
redis.call('HSET', KEYS[3], pick, ARGV[2])
local body = redis.call('HGET', KEYS[4], pick) or ''
local flags = {}
-- Only a reclaimed chunk can hold recipients with outcomes already.
if not fresh then
  for id in string.gmatch(redis.call('HGET', KEYS[5], pick) or '', '[^\31]+') do
    flags[#flags + 1] = redis.call('HEXISTS', KEYS[6], id)
  end
end
return finish(run, leases, now, true, pick, body, table.concat(flags), cancelled and 1 or 0)
