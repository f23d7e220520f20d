-- Marks a claimed chunk finished; the last one ends the run (lib_complete.lua).
-- KEYS[1]: run hash   KEYS[2]: run leases
-- ARGV[1]: chunk number   ARGV[2]: owner   ARGV[3]: now (µs)   ARGV[4]: now (text)
-- Returns: {seq, agenda, 1 when completed | 0 when the caller does not hold it}
return complete(KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
