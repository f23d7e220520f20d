-- Claims the lowest chunk that is unclaimed or whose lease expired, of a
-- sending run or of a cancelled run that still drains.
-- KEYS[1]: run hash   KEYS[2]: run leases (chunk → lease end)   KEYS[3]: lease owners
-- KEYS[4]: chunk bodies   KEYS[5]: chunk recipient ids   KEYS[6]: outcomes
-- ARGV[1]: now (µs)   ARGV[2]: owner   ARGV[3]: lease end (µs)
-- Returns: {seq, agenda, chunk number or -1, chunk JSON, per-recipient '1' when it
--   already has an outcome else '0', 1 when cancelled}
local run, leases, now = KEYS[1], KEYS[2], tonumber(ARGV[1])
local c = claim_next(run, leases, KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1], ARGV[2], ARGV[3])
if not c then return finish(run, leases, now, false, -1) end
return finish(run, leases, now, true, c[1], c[2], c[3], c[4])
