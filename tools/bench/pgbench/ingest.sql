-- The naive ingestion ceiling: what a server without group commit would do per
-- reading, one transaction each: store the reading, add its energy to the
-- device's hour. Same tables, same indexes, same durability as Wattline.
--
-- -D first_device=N -D per_client=K: client c writes to devices
-- first_device + c*K .. first_device + c*K + K-1, so no two clients share a
-- device; clock_timestamp() only increases within a client, so no reading
-- repeats.
\set dev :first_device + :client_id * :per_client + random(0, :per_client - 1)
\set wh random(1, 20)
BEGIN;
INSERT INTO readings (device_id, ts, value)
  VALUES (:dev, clock_timestamp(), :wh::float8 / 1000);
INSERT INTO device_hours (device_id, hour, kwh)
  VALUES (:dev, date_trunc('hour', clock_timestamp(), 'UTC'), :wh::float8 / 1000)
  ON CONFLICT (device_id, hour) DO UPDATE SET kwh = device_hours.kwh + EXCLUDED.kwh;
COMMIT;
