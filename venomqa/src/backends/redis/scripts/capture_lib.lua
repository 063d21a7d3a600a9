-- Shared head of the capture scripts (prepended to each one's body).
--
-- ARGV starts with the guards: ng, then ng x (db, key, value). Every key must still hold
-- its value (the session's turn lock, the pin of the app's database, the spare's lease),
-- or nothing happens. `i` is then the index of the script's own first argument.

-- The digest of database `db`: {count, d1, d2, d3, d4, volatile}, where d1..d4 are the
-- XOR of each key's SHA1 (of its name, DUMP payload and absolute expiry time) in four
-- 32-bit parts, and `volatile` (when asked for) lists each key with an expiry as
-- {expiry ms, c1, c2, c3, c4}, so the caller can account for keys that expire later.
local function digest(db, volatile)
  redis.call('SELECT', db)
  local keys = redis.call('KEYS', '*')
  local d1, d2, d3, d4 = 0, 0, 0, 0
  local vol = {}
  for _, k in ipairs(keys) do
    local e = redis.call('PEXPIRETIME', k)
    if e < 0 then e = 0 end
    local h = redis.sha1hex(k .. '\0' .. redis.call('DUMP', k) .. '\0' .. string.format('%d', e))
    local c1 = bit.tobit(tonumber(string.sub(h, 1, 8), 16))
    local c2 = bit.tobit(tonumber(string.sub(h, 9, 16), 16))
    local c3 = bit.tobit(tonumber(string.sub(h, 17, 24), 16))
    local c4 = bit.tobit(tonumber(string.sub(h, 25, 32), 16))
    d1, d2, d3, d4 = bit.bxor(d1, c1), bit.bxor(d2, c2), bit.bxor(d3, c3), bit.bxor(d4, c4)
    if volatile and e > 0 then
      vol[#vol + 1] = {e, c1, c2, c3, c4}
    end
  end
  return {#keys, d1, d2, d3, d4, vol}
end

-- Copies every key of database `from` into database `to`: COPY duplicates the value with
-- its type, encoding and absolute expiry time, server-side. Returns how many, and the
-- expiry times (ms) of the keys that have one.
local function copy_all(from, to)
  redis.call('SELECT', from)
  local keys = redis.call('KEYS', '*')
  local vol = {}
  for _, k in ipairs(keys) do
    redis.call('COPY', k, k, 'DB', to)
    local e = redis.call('PEXPIRETIME', k)
    if e > 0 then vol[#vol + 1] = e end
  end
  return #keys, vol
end

-- What a copy into `db` proves itself with, as {count, d1, d2, d3, d4, volatile}: with
-- proof 'digest' the digest of `db` (above); with proof 'count' the key count, zeros, and
-- each key with an expiry as {expiry, 0, 0, 0, 0}.
local function proof_of(db, proof, count, expiries)
  if proof == 'digest' then
    return digest(db, true)
  end
  local vol = {}
  for _, e in ipairs(expiries) do vol[#vol + 1] = {e, 0, 0, 0, 0} end
  return {count, 0, 0, 0, 0, vol}
end

local ng = tonumber(ARGV[1])
local i = 2
for g = 1, ng do
  redis.call('SELECT', tonumber(ARGV[i]))
  if redis.call('GET', ARGV[i + 1]) ~= ARGV[i + 2] then
    return redis.error_reply('VQLOST the lease ' .. ARGV[i + 1] .. ' in database ' .. ARGV[i] .. ' is no longer held by this manager')
  end
  i = i + 3
end
