-- Chunks' last batches, one or many: records each batch's outcomes as
-- record_outcomes.lua does, then marks its chunk finished as
-- complete_chunk.lua does (the last one ends the run).
-- Many runs per call only on one Redis server: on a Redis Cluster the
-- store calls it once per run, so its keys share the run's slot.
-- KEYS[4i+1..4i+4]: run i's hash, leases, outcomes, and outcomes not yet
--   in the history (list)
-- ARGV, per run in turn: chunk number, owner, now (µs), now (text), n,
--   then n quads: recipient id, outcome, outcome JSON, outcome instant (µs)
-- Returns one reply per run, in order: {seq, agenda, 1 when completed | 0
--   when the caller does not hold it, how many outcomes were new}, or
--   false when the run does not exist
local replies, at = {}, 1
for i = 1, #KEYS, 4 do
  local run, chunk, owner, now, now_text = KEYS[i], ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2]), ARGV[at + 3]
  local first = at + 5
  local last = first + 4 * tonumber(ARGV[at + 4]) - 1
  at = last + 1
  -- The run is read once, before its outcomes: the read says whether it
  -- exists, and its counters move in the one write that completes the
  -- chunk (benches/README.md, P4 session 10).
  local f = redis.call('HMGET', run, unpack(COMPLETE_FIELDS))
  if not f[1] then
    replies[#replies + 1] = false
  else
    local add = {}
    local new = record_into(KEYS[i + 2], KEYS[i + 3], first, last, add)
    local reply = complete(run, KEYS[i + 1], chunk, owner, now, now_text, f, add)
    reply[#reply + 1] = new
    replies[#replies + 1] = reply
  end
end
return replies
