-- Devices, their readings (partitioned by month), energy per hour, alerts.

CREATE TABLE devices (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    address        text NOT NULL DEFAULT '' CHECK (length(address) <= 500),
    max_hourly_kwh double precision NOT NULL CHECK (max_hourly_kwh > 0 AND max_hourly_kwh < 'Infinity'),
    reading_type   text NOT NULL DEFAULT 'cumulative' CHECK (reading_type IN ('cumulative', 'interval')),
    owner_id       bigint REFERENCES users (id) ON DELETE SET NULL,
    token_hash     text NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz
);

CREATE INDEX devices_owner_idx ON devices (owner_id, id);

-- A reading as the device sent it: the register (cumulative) or the energy
-- since the previous reading (interval), in kWh.
CREATE TABLE readings (
    device_id bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL CHECK (value >= 0 AND value < 'Infinity'),
    PRIMARY KEY (device_id, ts)
) PARTITION BY RANGE (ts);

-- Readings outside the months prepared ahead (old backfills) land here, so an
-- insert never fails for want of a partition.
CREATE TABLE readings_default PARTITION OF readings DEFAULT;

-- Creates the monthly partitions covering [from_month, from_month + months).
-- A month whose rows already sit in the default partition stays there.
CREATE FUNCTION readings_ensure_partitions(from_month date, months int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    created int := 0;
    m date := date_trunc('month', from_month)::date;
    part text;
BEGIN
    FOR i IN 1..months LOOP
        part := format('readings_%s', to_char(m, 'YYYY_MM'));
        IF to_regclass(part) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                    part, m::timestamp AT TIME ZONE 'UTC',
                    (m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'month % stays in readings_default', m;
            END;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END;
$$;

SELECT readings_ensure_partitions((now() AT TIME ZONE 'UTC' - interval '1 month')::date, 4);

-- Energy per device and UTC clock hour, recomputed from the readings
-- whenever a reading that touches the hour arrives.
CREATE TABLE device_hours (
    device_id bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    hour      timestamptz NOT NULL,
    kwh       double precision NOT NULL,
    PRIMARY KEY (device_id, hour)
);

CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id       bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    hour_start      timestamptz NOT NULL,
    hour_kwh        double precision NOT NULL,
    max_hourly_kwh  double precision NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    UNIQUE (device_id, hour_start)
);

CREATE INDEX alerts_device_id_idx ON alerts (device_id, id);
