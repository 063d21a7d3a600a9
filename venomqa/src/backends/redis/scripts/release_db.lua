-- Gives back the lease KEYS[1] of database ARGV[2], if it still holds ARGV[1]: empties the
-- database, then deletes the key (back in database ARGV[3]).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SELECT', tonumber(ARGV[2]))
  redis.call('FLUSHDB')
  redis.call('SELECT', tonumber(ARGV[3]))
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
