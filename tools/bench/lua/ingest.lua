-- ingest.lua: single-reading ingestion, one reading per request.
--
-- Environment:
--   BENCH_DEVICES  file of "device_id token" lines (cumulative devices)
--   BENCH_T0       first timestamp, seconds since the epoch
--   BENCH_STEP     seconds between two readings of one device
-- Each thread takes every BENCH_WRK_THREADS-th device and posts to them in
-- turn; a device's n-th reading is at T0 + n * STEP + (a per-device offset
-- below STEP), so timestamps only increase and never repeat. The meter
-- register is a function of the timestamp (0.01 kWh a minute), so readings
-- that arrive out of order still describe one consistent meter.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local mine = {}
local turn = 0
local t0, step

function init(args)
   t0 = bench_env_number("BENCH_T0")
   step = bench_env_number("BENCH_STEP")
   local threads = bench_env_number("BENCH_WRK_THREADS")
   for i, d in ipairs(bench_read_devices(os.getenv("BENCH_DEVICES"))) do
      if (i - 1) % threads == bench_thread_index then
         mine[#mine + 1] = {
            n = 0,
            offset = d.id % step,
            headers = {["Authorization"] = "Bearer " .. d.token,
                       ["Content-Type"] = "application/json"},
         }
      end
   end
   if #mine == 0 then
      error("no devices for this thread")
   end
end

function request()
   turn = turn % #mine + 1
   local d = mine[turn]
   local ts = t0 + d.offset + d.n * step
   d.n = d.n + 1
   local body = string.format('{"ts":"%s","meter_kwh":%.4f}', bench_iso(ts), ts / 6000)
   return wrk.format("POST", "/api/v1/measurements", d.headers, body)
end
