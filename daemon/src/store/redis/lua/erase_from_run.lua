-- Erases one recipient from a finished run, in bounded steps: first its
-- outcome and tracking records and a preview rendered for them, then its
-- rows in a few chunks per call.
-- KEYS[1]: run hash   KEYS[2]: outcomes   KEYS[3]: chunks   KEYS[4]: chunk ids
-- KEYS[5]: openers   KEYS[6]: clickers   KEYS[7]: unsubscribers
-- ARGV[1]: recipient id   ARGV[2]: first chunk   ARGV[3]: chunks to scan
-- Returns: {status, next chunk, provider message id or ''}; status is
--   'not_finished', 'more' or 'done'
local f = redis.call('HMGET', KEYS[1], 'state', 'finished_at', 'drain', 'chunks')
if not f[1] then return {'done', 0, ''} end
if not FINAL[f[1]] or not f[2] or f[3] == '1' then return {'not_finished', 0, ''} end
local who, from, sep = ARGV[1], tonumber(ARGV[2]), '\31'
local touched, pmid = 0, ''
if from == 0 then
  local record = redis.call('HGET', KEYS[2], who)
  if record then
    local o = cjson.decode(record)
    if type(o.provider_message_id) == 'string' then pmid = o.provider_message_id end
    redis.call('HDEL', KEYS[2], who)
    touched = 1
  end
  for k = 5, 7 do touched = touched + redis.call('SREM', KEYS[k], who) end
  -- The preview was rendered from the recipient's data: it goes too.
  local preview = redis.call('HGET', KEYS[1], 'preview')
  if preview and cjson.decode(preview).recipient_id == who then
    redis.call('HDEL', KEYS[1], 'preview')
    touched = 1
  end
end
local chunks = tonumber(f[4]) or 0
local stop = math.min(chunks, from + tonumber(ARGV[3]))
for n = from, stop - 1 do
  local ids = redis.call('HGET', KEYS[4], n)
  if ids and string.find(sep .. ids .. sep, sep .. who .. sep, 1, true) then
    local kept = {}
    for id in string.gmatch(ids, '[^\31]+') do
      if id ~= who then kept[#kept + 1] = id end
    end
    redis.call('HSET', KEYS[4], n, table.concat(kept, sep))
    local chunk = cjson.decode(redis.call('HGET', KEYS[3], n))
    local rows = {}
    for _, row in ipairs(chunk.recipients) do
      if row.id ~= who then rows[#rows + 1] = row end
    end
    -- cjson writes an empty table as an object; the reader wants a list.
    local body = '[]'
    if #rows > 0 then body = cjson.encode(rows) end
    redis.call('HSET', KEYS[3], n, '{"number":' .. n .. ',"recipients":' .. body .. '}')
    touched = 1
  end
end
if touched > 0 then redis.call('HSET', KEYS[1], 'outcomes_purged', '1') end
if stop < chunks then return {'more', stop, pmid} end
return {'done', stop, pmid}
