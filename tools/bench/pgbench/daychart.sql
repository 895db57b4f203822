-- The day-chart ceiling: the least SQL that answers the chart for one device
-- and a random day of its year: the device (limit, owner) and its 24 hours.
--
-- -D dev=ID -D first_day=EPOCH_SECONDS -D days=N
\set day random(0, :days - 1)
SELECT owner_id, max_hourly_kwh FROM devices WHERE id = :dev;
SELECT hour, kwh FROM device_hours
  WHERE device_id = :dev
    AND hour >= to_timestamp(:first_day + :day * 86400)
    AND hour < to_timestamp(:first_day + (:day + 1) * 86400)
  ORDER BY hour;
