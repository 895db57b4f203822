-- Every stored figure is finite: hourly energy, alert figures, each device's
-- newest reading (readings themselves were already: value >= 0 AND value <
-- 'Infinity'). JSON has no NaN or infinity, and before readings were bounded
-- (1e12, ingest/check.h) finite readings near 1e308 could sum to Infinity.
--
-- In PostgreSQL NaN equals NaN and sorts above 'Infinity', so `x < 'Infinity'`
-- refuses NaN and +Infinity, and `x > '-Infinity'` refuses -Infinity.
--
-- Safe on existing data: a figure stored non-finite by that overflow first
-- becomes the largest double, which is what the arithmetic now gives for a sum
-- that overflows (ingest/energy.c). Values are never negative, so -Infinity
-- cannot have been stored; were it there, it would become 0.

UPDATE device_hours
SET kwh = CASE WHEN kwh = '-Infinity' THEN 0 ELSE 1.7976931348623157e308 END
WHERE NOT (kwh < 'Infinity' AND kwh > '-Infinity');

UPDATE alerts
SET hour_kwh = CASE WHEN hour_kwh = '-Infinity' THEN 0 ELSE 1.7976931348623157e308 END
WHERE NOT (hour_kwh < 'Infinity' AND hour_kwh > '-Infinity');

-- max_hourly_kwh is copied from devices, whose own CHECK keeps it finite.
UPDATE alerts
SET max_hourly_kwh = 1.7976931348623157e308
WHERE NOT (max_hourly_kwh < 'Infinity' AND max_hourly_kwh > '-Infinity');

ALTER TABLE device_hours
    ADD CONSTRAINT device_hours_kwh_finite
        CHECK (kwh < 'Infinity' AND kwh > '-Infinity');

ALTER TABLE alerts
    ADD CONSTRAINT alerts_hour_kwh_finite
        CHECK (hour_kwh < 'Infinity' AND hour_kwh > '-Infinity'),
    ADD CONSTRAINT alerts_max_hourly_kwh_finite
        CHECK (max_hourly_kwh < 'Infinity' AND max_hourly_kwh > '-Infinity');

-- A copy of a stored reading, so finite already; said here too.
ALTER TABLE devices
    ADD CONSTRAINT devices_latest_reading_value_finite
        CHECK (latest_reading_value >= 0 AND latest_reading_value < 'Infinity');
