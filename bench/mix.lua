-- A weighted mix of pre-built requests for wrk.
-- BENCH_REQUESTS names a Lua file returning { {weight = w, reqs = { {method, path, headers, body}, ... }}, ... };
-- each request picks a group by weight, then one of its requests at random (tokens, ids, bodies vary).
local groups, cumulative, total = {}, {}, 0

function init(args)
   local spec = dofile(os.getenv("BENCH_REQUESTS"))
   math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
   for i, group in ipairs(spec) do
      local built = {}
      for j, r in ipairs(group.reqs) do
         built[j] = wrk.format(r[1], r[2], r[3], r[4])
      end
      groups[i] = built
      total = total + group.weight
      cumulative[i] = total
   end
end

function request()
   local x = math.random() * total
   for i = 1, #cumulative do
      if x <= cumulative[i] then
         local built = groups[i]
         return built[math.random(#built)]
      end
   end
   local built = groups[#groups]
   return built[math.random(#built)]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
      '"status": %d, "timeout": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d, "p999": %d, "max": %d, "mean": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end
