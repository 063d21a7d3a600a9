-- Leases the first free slot of ARGV[3]..ARGV[4]: SET <ARGV[5]><i><ARGV[7]> <owner ARGV[1]>
-- NX PX <ttl ARGV[2]>. In database isolation (ARGV[6] == '1') the leased database is
-- selected and emptied in the same atomic step. Returns the slot, or -1 when all are taken.
for i = tonumber(ARGV[3]), tonumber(ARGV[4]) do
  local key = ARGV[5] .. i .. ARGV[7]
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    if ARGV[6] == '1' then
      local selected = redis.pcall('SELECT', i)
      if type(selected) == 'table' and selected.err then
        redis.call('DEL', key)
        return redis.error_reply('database ' .. i .. ' cannot be selected: ' .. selected.err)
      end
      redis.call('FLUSHDB')
    end
    return i
  end
end
return -1
