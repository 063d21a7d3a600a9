-- Rollback: swaps the app's database ARGV[i] with spare ARGV[i+1], which holds the
-- checkpoint, so every client of the app's database sees the checkpoint at once. Then, by
-- mode ARGV[i+2]:
--   'refill' copies the restored data back into the spare (the checkpoint stays) and
--            returns its proof (see proof_of; ARGV[i+5] is 'count' or 'digest');
--   'drop'   empties the spare (the checkpoint ends) and returns the app's key count;
--   'keep'   does not swap (the checkpoint ends, its changes kept), empties the spare.
-- For a session's first checkpoint, 'drop' and 'keep' also delete its record ARGV[i+3] and
-- the spare's lease key ARGV[i+4] (which holds the record's marker), in the same step.
local app, spare, mode = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2]
if mode ~= 'keep' then
  redis.call('SWAPDB', app, spare)
end
if mode == 'refill' then
  redis.call('SELECT', spare)
  redis.call('FLUSHDB')
  local n, expiries = copy_all(app, spare)
  return proof_of(spare, ARGV[i + 5], n, expiries)
end
redis.call('SELECT', spare)
redis.call('FLUSHDB', 'ASYNC')
if ARGV[i + 3] ~= '' then
  redis.call('SELECT', 0)
  redis.call('DEL', ARGV[i + 3], ARGV[i + 4])
end
redis.call('SELECT', app)
return redis.call('DBSIZE')
