-- Extends a lease (or pin) KEYS[1] in database ARGV[3] to ARGV[2] ms, if it still holds
-- ARGV[1]. The script's SELECT does not change the caller's database.
redis.call('SELECT', tonumber(ARGV[3]))
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return -1
