-- A user's action (confirm, cancel, pause, resume) first expires a pending
-- run at or past its confirm deadline, as the expiry pass would have made
-- it: nobody confirmed it in time (README, "Life of a run"). Returns true
-- when it expired the run; the action then answers a conflict in `expired`.
-- run: the run hash; now: the caller's instant (µs); now_text: the same as text.
local function expire_if_late(run, now, now_text)
  local f = redis.call('HMGET', run, 'state', 'deadline_us')
  if f[1] ~= 'pending' or now < tonumber(f[2]) then return false end
  redis.call('HSET', run, 'state', 'expired', 'finished_at', now_text)
  return true
end
