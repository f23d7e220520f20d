-- A chunk's last batch, in one step: records its outcomes as
-- record_outcomes.lua does, then marks the chunk finished as
-- complete_chunk.lua does (the last one ends the run).
-- KEYS[1]: run hash   KEYS[2]: run leases   KEYS[3]: lease owners
-- KEYS[4]: outcomes   KEYS[5]: outcomes not yet in the history (list)
-- ARGV[1]: chunk number   ARGV[2]: owner   ARGV[3]: now (µs)   ARGV[4]: now (text)
-- ARGV[4i+1..4i+4]: recipient id, outcome, outcome JSON, outcome instant (µs)
-- Returns: {seq, agenda, 1 when completed | 0 when the caller does not hold it,
--   how many outcomes were new}, or false when the run does not exist
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local new = record(KEYS[1], KEYS[4], KEYS[5], 5)
local reply = complete(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
reply[#reply + 1] = new
return reply
