-- Before a rollback: the server's time (ms) and the digest of spare database ARGV[i], to
-- prove that it still holds the checkpoint.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local d = digest(tonumber(ARGV[i]), false)
return {now, d[1], d[2], d[3], d[4], d[5]}
