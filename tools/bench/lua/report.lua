-- report.lua: the done() of every bench wrk script. Prints one line that
-- bench.js parses: "BENCH_RESULT" and a JSON object (times in microseconds).
-- Every script also gets the shared helpers below.

-- RFC 3339 for whole seconds since the epoch, UTC. The date part changes once
-- a day, so it is cached: formatting thousands of timestamps per request must
-- not steal CPU from the server on the same cores.
local cached_day, cached_prefix
function bench_iso(t)
   local day = math.floor(t / 86400)
   if day ~= cached_day then
      cached_day = day
      cached_prefix = os.date("!%Y-%m-%dT", day * 86400)
   end
   local s = t - day * 86400
   return string.format("%s%02d:%02d:%02dZ", cached_prefix, math.floor(s / 3600),
                        math.floor(s / 60) % 60, s % 60)
end

-- The lines of a file of "device_id token" pairs, as {id=, token=} tables.
function bench_read_devices(file)
   local devices = {}
   for line in io.lines(file) do
      local id, token = line:match("^(%d+) (%S+)$")
      if id then
         devices[#devices + 1] = {id = tonumber(id), token = token}
      end
   end
   return devices
end

function bench_env_number(name)
   local v = tonumber(os.getenv(name) or "")
   if not v then
      error(name .. " is not set")
   end
   return v
end

-- setup() runs in the main state once per thread: number the threads so that
-- each can take its own share of the devices (a device never has two threads
-- writing its timeline, so timestamps never collide).
local thread_count = 0
function setup(thread)
   thread:set("bench_thread_index", thread_count)
   thread_count = thread_count + 1
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
