-- Takes or extends the shared pin ARGV[1] of a prefix/none manager's home database (KEYS[1]
-- in database 0) for ARGV[2] ms, unless a database-isolation manager holds that database.
redis.call('SELECT', 0)
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
