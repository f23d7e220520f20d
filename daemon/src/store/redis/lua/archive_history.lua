-- Before retention purges a run's outcome, turns the recipient's history
-- member `run id` into `run id \31 outcome` (same score: the instant), so
-- the entry outlives the run's rows until `retention.history`; the channel
-- stays in the run's hash. Short members keep the history a listpack.
-- An entry erased meanwhile is not brought back.
-- KEYS[1]: the recipient's history
-- ARGV[1]: run id   ARGV[2]: the recipient's outcome
-- Returns: 1 when archived, 0 when there was no such entry
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], score, ARGV[1] .. '\31' .. ARGV[2])
return 1
