-- Every destructive step: verify on the server, in the same atomic script, that each guard
-- key still holds its value, then (in database data_db) FLUSHDB and/or UNLINK keys and
-- RESTORE entries.
-- ARGV: ng, ng x (db, key, value), data_db, flush ('1'/'0'), nu, nu x key,
-- then (key, absolute expiry ms or '0', payload) triples.
local ng = tonumber(ARGV[1])
local i = 2
for g = 1, ng do
  redis.call('SELECT', tonumber(ARGV[i]))
  if redis.call('GET', ARGV[i + 1]) ~= ARGV[i + 2] then
    return redis.error_reply('VQLOST the lease ' .. ARGV[i + 1] .. ' in database ' .. ARGV[i] .. ' is no longer held by this manager')
  end
  i = i + 3
end
redis.call('SELECT', tonumber(ARGV[i]))
if ARGV[i + 1] == '1' then redis.call('FLUSHDB') end
local nu = tonumber(ARGV[i + 2])
i = i + 3
for u = 1, nu do
  redis.call('UNLINK', ARGV[i])
  i = i + 1
end
while i <= #ARGV do
  if ARGV[i + 1] == '0' then
    redis.call('RESTORE', ARGV[i], 0, ARGV[i + 2], 'REPLACE')
  else
    redis.call('RESTORE', ARGV[i], ARGV[i + 1], ARGV[i + 2], 'REPLACE', 'ABSTTL')
  end
  i = i + 3
end
return 1
