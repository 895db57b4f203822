-- daychart.lua: the day-chart endpoint of one device, a different day of its
-- year on each request (so no answer is a repeat of the one before).
--
-- Environment: BENCH_DEVICE (id), BENCH_TOKEN (the owner's access token),
-- BENCH_FIRST_DAY (midnight UTC of the first day, seconds), BENCH_DAYS.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local paths = {}
local headers
local turn = 0

function init(args)
   local device = bench_env_number("BENCH_DEVICE")
   local first = bench_env_number("BENCH_FIRST_DAY")
   local days = bench_env_number("BENCH_DAYS")
   headers = {["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")}
   -- The threads start at different days.
   local start = bench_thread_index * 97
   for i = 0, days - 1 do
      local day = os.date("!%Y-%m-%d", first + ((start + i) % days) * 86400)
      paths[#paths + 1] = string.format("/api/v1/devices/%d/consumption?date=%s&tz=UTC",
                                        device, day)
   end
end

function request()
   turn = turn % #paths + 1
   return wrk.format("GET", paths[turn], headers)
end
