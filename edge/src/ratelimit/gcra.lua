-- One shared rate-limit check (GCRA: the generic cell rate algorithm, a token bucket kept as
-- one number, the "theoretical arrival time" at which the bucket is full again).
-- KEYS[1]  the bucket
-- ARGV[1]  microseconds per token (the emission interval), at least 1 (the edge refuses faster
--          shared limits: next to 1.7e15 µs a double resolves 0.25 µs); fractional, e.g. 3.333
--          for 300,000/s, so such a rate is not rounded to 333,333/s
-- ARGV[2]  burst (the bucket size, in tokens)
-- Returns {allowed (0/1), tokens left, microseconds until full, microseconds until a token}.
-- The clock is the server's (TIME), so replicas whose clocks differ still agree.
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then
  tat = now
end
local new_tat = tat + interval
local until_full = new_tat - now
if until_full > tolerance then
  return {0, 0, tat - now, until_full - tolerance}
end
-- Formatted: Lua 5.1 would print a number of 16 digits as 1.7e+15 and lose the microseconds.
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX',
  string.format('%d', math.max(1, math.ceil(until_full / 1000))))
return {1, math.floor((tolerance - until_full) / interval), until_full, 0}
