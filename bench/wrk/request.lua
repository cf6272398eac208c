-- One request shape for wrk, set by the environment; bench.load starts wrk with it (bench/README.md).
--
-- Usage: BENCH_METHOD=POST BENCH_BODY='grant_type=client_credentials' \
--        BENCH_AUTHORIZATION='Basic ...' wrk -t2 -c16 -d10s --latency -s bench/wrk/request.lua \
--        http://127.0.0.1:5600/token
--   BENCH_METHOD         GET (default) or POST
--   BENCH_BODY           form body of a POST (application/x-www-form-urlencoded)
--   BENCH_AUTHORIZATION  value of the Authorization header (Basic or Bearer), if any
--   BENCH_RANDOM_TOKEN   "prefix:first:last": each request's body is token=<prefix><n>, n drawn
--                        uniformly from first..last (introspection of stored tokens, bench/fill.py)
--   BENCH_RANDOM_TOKEN_IN "bearer": the random token goes in "Authorization: Bearer" instead of the
--                        body (UserInfo with stored tokens, bench.scale)
-- At the end it prints one line "BENCH_RESULT {json}": requests, duration (µs), errors by kind,
-- and latency percentiles (µs), which bench.load reads instead of parsing wrk's text.

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local authorization = os.getenv("BENCH_AUTHORIZATION")
local random_token = os.getenv("BENCH_RANDOM_TOKEN")
local random_in = os.getenv("BENCH_RANDOM_TOKEN_IN") or "body"
local prefix, first, last

local headers = {}
if authorization and authorization ~= "" then
  headers["Authorization"] = authorization
end
if method == "POST" then
  headers["Content-Type"] = "application/x-www-form-urlencoded"
end

if random_token and random_token ~= "" then
  local p, a, b = random_token:match("^(.*):(%d+):(%d+)$")
  prefix, first, last = p, tonumber(a), tonumber(b)
end

local thread_counter = 0
function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("thread_id", thread_counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0))
  if not prefix then
    -- The same bytes every time: format once.
    fixed = wrk.format(method, nil, headers, body)
  end
end

function request()
  if prefix then
    local token = prefix .. tostring(math.random(first, last))
    if random_in == "bearer" then
      headers["Authorization"] = "Bearer " .. token
      return wrk.format(method, nil, headers, body)
    end
    return wrk.format(method, nil, headers, "token=" .. token)
  end
  return fixed
end

function done(summary, latency, requests)
  local e = summary.errors
  local out = string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d}, "latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  )
  io.write("BENCH_RESULT " .. out .. "\n")
end
