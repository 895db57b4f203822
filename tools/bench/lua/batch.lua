-- batch.lua: batched ingestion, BENCH_BATCH readings per request.
--
-- Environment as for ingest.lua, plus BENCH_BATCH (readings per request). A
-- request carries the next BENCH_BATCH readings of one device's timeline; the
-- threads' connections take the devices in turn.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local mine = {}
local turn = 0
local t0, step, batch

function init(args)
   t0 = bench_env_number("BENCH_T0")
   step = bench_env_number("BENCH_STEP")
   batch = bench_env_number("BENCH_BATCH")
   local threads = bench_env_number("BENCH_WRK_THREADS")
   for i, d in ipairs(bench_read_devices(os.getenv("BENCH_DEVICES"))) do
      if (i - 1) % threads == bench_thread_index then
         mine[#mine + 1] = {
            n = 0,
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
   local parts = {}
   for i = 1, batch do
      local ts = t0 + d.n * step
      d.n = d.n + 1
      parts[i] = string.format('{"ts":"%s","meter_kwh":%.4f}', bench_iso(ts), ts / 6000)
   end
   local body = '{"measurements":[' .. table.concat(parts, ",") .. "]}"
   return wrk.format("POST", "/api/v1/measurements", d.headers, body)
end
