-- Checkpoint: fills spare database ARGV[i+1] with a copy of the app's database ARGV[i] and
-- returns its proof (see proof_of; ARGV[i+6] is 'count' or 'digest'). For a session's
-- first checkpoint (record key ARGV[i+2] not empty) it also records it, in the same atomic
-- step: the spare's lease key ARGV[i+5] then holds the marker ARGV[i+4] without expiry, and
-- the record names the spare, the owner ARGV[i+3] and the marker, so that the next session
-- restores the app's database if this process dies.
local app, spare = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
redis.call('SELECT', spare)
redis.call('FLUSHDB')
local n, expiries = copy_all(app, spare)
local d = proof_of(spare, ARGV[i + 6], n, expiries)
if ARGV[i + 2] ~= '' then
  redis.call('SELECT', 0)
  redis.call('SET', ARGV[i + 5], ARGV[i + 4])
  redis.call('DEL', ARGV[i + 2])
  redis.call('HSET', ARGV[i + 2], 'spare', ARGV[i + 1], 'owner', ARGV[i + 3], 'marker', ARGV[i + 4])
end
return d
