-- Before a rollback: the server's time (ms) and what spare database ARGV[i] holds, to prove
-- that it still holds the checkpoint: with proof ARGV[i+1] 'digest' its key count and
-- digest, with 'count' its DBSIZE (which still counts keys that expired but are not
-- reclaimed yet) and zeros.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[i + 1] ~= 'digest' then
  redis.call('SELECT', tonumber(ARGV[i]))
  return {now, redis.call('DBSIZE'), 0, 0, 0, 0}
end
local d = digest(tonumber(ARGV[i]), false)
return {now, d[1], d[2], d[3], d[4], d[5]}
