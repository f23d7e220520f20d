-- Records final outcomes (lib_record.lua).
-- KEYS[1]: run hash   KEYS[2]: outcomes (recipient id → outcome JSON)
-- KEYS[3]: outcomes not yet in the history (list)
-- ARGV[4i-3]: recipient id   ARGV[4i-2]: outcome   ARGV[4i-1]: outcome JSON
-- ARGV[4i]: outcome instant (µs)
-- Returns: how many outcomes were new, or false when the run does not exist
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return record(KEYS[1], KEYS[2], KEYS[3], 1, #ARGV)
