-- Each device's newest stored reading, kept on its row by the ingestion
-- transaction that stores a newer one (the only writer of readings). Locking
-- the device row (SELECT ... FOR UPDATE) then returns it as the previous lock
-- holder committed it: no search of every monthly partition of readings,
-- whose cost grew with the months kept.

ALTER TABLE devices
    ADD COLUMN latest_reading_ts    timestamptz,
    ADD COLUMN latest_reading_value double precision,
    ADD CONSTRAINT devices_latest_reading_check
        CHECK ((latest_reading_ts IS NULL) = (latest_reading_value IS NULL));

UPDATE devices d
SET latest_reading_ts = l.ts, latest_reading_value = l.value
FROM (SELECT DISTINCT ON (device_id) device_id, ts, value
      FROM readings ORDER BY device_id, ts DESC) l
WHERE d.id = l.device_id;
