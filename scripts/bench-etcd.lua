-- The load of `scripts/bench.sh --etcd` on etcd 3.4's v3 JSON gateway, run by wrk:
--
--   wrk -t1 -c50 -d10s -s scripts/bench-etcd.lua http://127.0.0.1:23791 -- MODE KEYS VALUE_BYTES
--
-- MODE
--   set  POST /v3/kv/put, a random key of KEYS, a VALUE_BYTES-byte value
--   get  POST /v3/kv/range, a random key of KEYS; linearizable (etcd's default: the member
--        asks the leader for a ReadIndex and waits until it has applied up to it)
--
-- The keys are redis-benchmark -r's, "key:%012d" with a number below KEYS, and the value is
-- VALUE_BYTES 'x's like redis-benchmark -d's; the gateway wants both base64-encoded.
-- scripts/bench.sh writes every key once before the runs, so that every GET finds its key.
--
-- done() prints one line for scripts/bench.sh, latencies in ms:
--   etcd-result mode=M requests=N secs=S rps=R avg_ms= min_ms= p50_ms= p95_ms= p99_ms=
--     max_ms= ok=N non200=N sockerr=N hits=N misses=N
-- ok counts the replies with status 200 that carry etcd's response header, non200 the
-- others; hits and misses split the GETs' ok replies into those with the key and those
-- without; sockerr sums wrk's connect, read, write and timeout errors.

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local digit = {}
for i = 0, 63 do
  digit[i] = alphabet:sub(i + 1, i + 1)
end

-- Standard base64 (RFC 4648) with '=' padding.
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local d1 = math.floor(n / 262144) % 64
    local d2 = math.floor(n / 4096) % 64
    local d3 = math.floor(n / 64) % 64
    local d4 = n % 64
    out[#out + 1] = digit[d1] .. digit[d2] .. (b and digit[d3] or "=") .. (c and digit[d4] or "=")
  end
  return table.concat(out)
end

-- Per thread (each wrk thread has a Lua state of its own); globals, so that done() can
-- read them through thread:get().
mode, keys, value = "get", 100000, ""
ok, non200, hits, misses = 0, 0, 0, 0

local json_headers = { ["Content-Type"] = "application/json" }
local encoded_keys = {}

local function key(n)
  local k = encoded_keys[n]
  if k == nil then
    k = base64(string.format("key:%012d", n))
    encoded_keys[n] = k
  end
  return k
end

function init(args)
  mode = args[1] or "get"
  keys = tonumber(args[2] or "100000")
  if mode ~= "set" and mode ~= "get" then
    error("bench-etcd.lua: unknown mode " .. tostring(mode))
  end
  value = base64(string.rep("x", tonumber(args[3] or "64")))
  math.randomseed(os.time())
end

function request()
  local k = key(math.random(0, keys - 1))
  if mode == "set" then
    return wrk.format("POST", "/v3/kv/put", json_headers,
      '{"key":"' .. k .. '","value":"' .. value .. '"}')
  end
  return wrk.format("POST", "/v3/kv/range", json_headers, '{"key":"' .. k .. '"}')
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"header"', 1, true) then
    non200 = non200 + 1
    return
  end
  ok = ok + 1
  if mode == "get" then
    if body:find('"kvs"', 1, true) then
      hits = hits + 1
    else
      misses = misses + 1
    end
  end
end

-- setup() and done() run in wrk's main Lua state, which sees the threads only through
-- these handles.
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local sum = { ok = 0, non200 = 0, hits = 0, misses = 0 }
  for _, t in ipairs(threads) do
    for name in pairs(sum) do
      sum[name] = sum[name] + (t:get(name) or 0)
    end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  local function ms(us) return us / 1000 end
  io.write(string.format("etcd-result mode=%s requests=%d secs=%.3f rps=%.1f avg_ms=%.3f "
    .. "min_ms=%.3f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f max_ms=%.3f ok=%d non200=%d "
    .. "sockerr=%d hits=%d misses=%d\n",
    threads[1] and threads[1]:get("mode") or "?", summary.requests, secs,
    summary.requests / secs, ms(latency.mean), ms(latency.min), ms(latency:percentile(50)),
    ms(latency:percentile(95)), ms(latency:percentile(99)), ms(latency.max), sum.ok,
    sum.non200, e.connect + e.read + e.write + e.timeout, sum.hits, sum.misses))
end
