-- A session that died left the record ARGV[i+1] of its first checkpoint. If the spare it
-- names still holds that checkpoint (its lease key, ARGV[i+2] .. spare, holds the record's
-- marker): mode ARGV[i+3] 'restore' swaps it back into the app's database ARGV[i]; then
-- the spare is emptied and both keys are deleted. Returns the spare, or -1 without a
-- record. A spare that is not the record's any more is an error (VQGONE), and nothing
-- changes; mode 'forget' then deletes the record alone.
redis.call('SELECT', 0)
local spare = redis.call('HGET', ARGV[i + 1], 'spare')
if not spare then
  return -1
end
local marker = redis.call('HGET', ARGV[i + 1], 'marker')
local lease = ARGV[i + 2] .. spare
if redis.call('GET', lease) ~= marker then
  if ARGV[i + 3] == 'forget' then
    redis.call('DEL', ARGV[i + 1])
    return tonumber(spare)
  end
  return redis.error_reply('VQGONE database ' .. spare .. ', which held the checkpoint, is not reserved for it any more')
end
if ARGV[i + 3] == 'restore' then
  redis.call('SWAPDB', tonumber(ARGV[i]), tonumber(spare))
end
redis.call('SELECT', tonumber(spare))
redis.call('FLUSHDB', 'ASYNC')
redis.call('SELECT', 0)
redis.call('DEL', ARGV[i + 1], lease)
return tonumber(spare)
