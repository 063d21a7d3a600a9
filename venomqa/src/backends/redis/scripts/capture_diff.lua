-- What changed in the app's database ARGV[i] since the checkpoint held by spare ARGV[i+1]:
-- {inserted, updated, deleted, rows}, listing at most ARGV[i+2] rows. A row is
-- {kind, key, type} for 'I' (inserted) and 'D' (deleted) keys, and for 'U' (updated) keys
-- {kind, key, column, old, new, column, old, new, ...} (at most 10 columns): `type` and
-- `expires_at_ms` when they changed, then hash fields, set members, a string's value, or the
-- length of a list, sorted set or stream. Sets and hashes are compared by content, not by
-- their DUMP (a copy may order its members differently).
local app, spare, limit = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])

local function show(v)
  if v == nil or v == false then return '(none)' end
  if #v > 60 then return string.sub(v, 1, 57) .. '...' end
  return v
end

local function state(db, k)
  redis.call('SELECT', db)
  local t = redis.call('TYPE', k)['ok']
  local e = redis.call('PEXPIRETIME', k)
  return t, e, redis.call('DUMP', k)
end

local function map_of(db, k, t)
  redis.call('SELECT', db)
  local m = {}
  if t == 'set' then
    for _, v in ipairs(redis.call('SMEMBERS', k)) do m[v] = v end
  else
    local a = redis.call('HGETALL', k)
    for j = 1, #a, 2 do m[a[j]] = a[j + 1] end
  end
  return m
end

local function length(db, k, t)
  redis.call('SELECT', db)
  if t == 'list' then return redis.call('LLEN', k) end
  if t == 'zset' then return redis.call('ZCARD', k) end
  if t == 'stream' then return redis.call('XLEN', k) end
  return 0
end

-- The changed columns of key k, empty when it is the same.
local function changes(k)
  local t0, e0, d0 = state(spare, k)
  local t1, e1, d1 = state(app, k)
  local cols = {}
  local function add(c, old, new)
    if #cols < 30 then
      cols[#cols + 1] = c
      cols[#cols + 1] = old
      cols[#cols + 1] = new
    end
  end
  if t0 ~= t1 then
    add('type', t0, t1)
  elseif d0 ~= d1 then
    if t0 == 'set' or t0 == 'hash' then
      local m0, m1 = map_of(spare, k, t0), map_of(app, k, t0)
      for f, v in pairs(m1) do
        if m0[f] ~= v then add(f, show(m0[f]), show(v)) end
      end
      for f, v in pairs(m0) do
        if m1[f] == nil then add(f, show(v), '(none)') end
      end
    elseif t0 == 'string' then
      redis.call('SELECT', spare)
      local old = redis.call('GET', k)
      redis.call('SELECT', app)
      add('value', show(old), show(redis.call('GET', k)))
    else
      local n0, n1 = length(spare, k, t0), length(app, k, t0)
      add('value', 'length ' .. n0, n1 == n0 and ('length ' .. n1 .. ', changed') or ('length ' .. n1))
    end
  end
  if e0 ~= e1 then
    local function at(e) if e < 0 then return 'none' end return string.format('%d', e) end
    add('expires_at_ms', at(e0), at(e1))
  end
  return cols
end

redis.call('SELECT', spare)
local before = {}
for _, k in ipairs(redis.call('KEYS', '*')) do before[k] = true end
redis.call('SELECT', app)
local now = redis.call('KEYS', '*')
local ni, nu, nd = 0, 0, 0
local rows = {}
local function row(r)
  if #rows < limit then rows[#rows + 1] = r end
end
for _, k in ipairs(now) do
  if before[k] then
    before[k] = nil
    local cols = changes(k)
    if #cols > 0 then
      nu = nu + 1
      local r = {'U', k}
      for _, c in ipairs(cols) do r[#r + 1] = c end
      row(r)
    end
  else
    ni = ni + 1
    redis.call('SELECT', app)
    row({'I', k, redis.call('TYPE', k)['ok']})
  end
end
for k, _ in pairs(before) do
  nd = nd + 1
  redis.call('SELECT', spare)
  row({'D', k, redis.call('TYPE', k)['ok']})
end
return {ni, nu, nd, rows}
