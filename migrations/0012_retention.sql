-- Data lifecycle (RAW_RETENTION_DAYS, wattline archive): raw readings are
-- retired by whole UTC months. Hourly energy, alerts and charts stay.
--
-- Retiring a month is two transactions around its archive (api/retention.c):
--   readings_close_month(m)  records the horizon (the oldest month kept) and
--                            shuts the month to ingestion, waiting for the
--                            writers already in it, so the archive that
--                            follows is complete;
--   readings_retire_month(m) drops the month's partition (and deletes its
--                            rows from the default partition, if any).
-- Both are SECURITY DEFINER: the server's role may not CREATE or DROP, so it
-- does neither itself. search_path is pinned so that no object of the
-- caller's can stand in for ours.

-- One row: the first day of the oldest month whose raw readings are kept
-- (NULL: nothing retired yet). Changed only by readings_close_month.
CREATE TABLE readings_horizon (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    oldest_kept date CHECK (oldest_kept = date_trunc('month', oldest_kept)::date)
);
INSERT INTO readings_horizon DEFAULT VALUES;

-- The horizon as an instant (-infinity when nothing was retired).
CREATE FUNCTION readings_horizon_ts() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT coalesce(oldest_kept::timestamp AT TIME ZONE 'UTC', '-infinity') FROM readings_horizon
$$;

-- Refuses a reading below the horizon. On the default partition always (a
-- late reading into a retired month must never land there), and on a
-- month's own partition from the moment it is closed. Ingestion checks the
-- horizon in memory first (422 too_old); this is for an instance whose
-- NOTIFY has not arrived yet: its group fails and the device retries, and
-- the retry gets 422 once the horizon has arrived.
CREATE FUNCTION readings_refuse_retired() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ts < readings_horizon_ts() THEN
        RAISE EXCEPTION 'reading at % falls in a retired month', NEW.ts
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER readings_default_retired BEFORE INSERT ON readings_default
    FOR EACH ROW EXECUTE FUNCTION readings_refuse_retired();

-- As in 0003, but never (re)creates a month below the horizon: a retired
-- month stays gone. SECURITY DEFINER (search_path pinned) because ingestion
-- calls it at runtime and the server's role may not CREATE (migration 0011);
-- CREATE OR REPLACE keeps its owner and grants.
CREATE OR REPLACE FUNCTION readings_ensure_partitions(from_month date, months int)
RETURNS int LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    created int := 0;
    m date := date_trunc('month', from_month)::date;
    horizon date := (SELECT oldest_kept FROM readings_horizon);
    part text;
BEGIN
    FOR i IN 1..months LOOP
        part := format('readings_%s', to_char(m, 'YYYY_MM'));
        IF to_regclass(part) IS NULL AND (horizon IS NULL OR m >= horizon) THEN
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

-- The months before `before` that still hold raw readings, oldest first:
-- those with a partition of their own, and those with rows in the default
-- partition (backfills older than the months prepared ahead).
CREATE FUNCTION readings_months_before(before date) RETURNS SETOF date
LANGUAGE sql STABLE AS $$
    SELECT m FROM (
        SELECT to_date(substr(c.relname, 10), 'YYYY_MM') AS m
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'readings'::regclass
           AND c.relname ~ '^readings_[0-9]{4}_[0-9]{2}$'
        UNION
        SELECT date_trunc('month', ts AT TIME ZONE 'UTC')::date
          FROM readings_default
         WHERE ts < before::timestamp AT TIME ZONE 'UTC'
    ) months
    WHERE m < before
    ORDER BY m
$$;

-- Shuts `month` (and every month before it) to ingestion: the horizon
-- becomes the month after it, and committing announces it to every instance
-- on wattline_events as {"readings_horizon": <epoch seconds>}. Waits for the
-- writers already in the month (the trigger's and the lock's waits), so a
-- snapshot taken after this commits holds every reading the month will ever
-- have. The current month cannot be closed. Returns the horizon.
CREATE FUNCTION readings_close_month(month date) RETURNS date
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m date := date_trunc('month', month)::date;
    part text := format('readings_%s', to_char(date_trunc('month', month), 'YYYY_MM'));
    horizon date;
BEGIN
    IF m >= date_trunc('month', now() AT TIME ZONE 'UTC')::date THEN
        RAISE EXCEPTION 'month % is not over yet', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE readings_horizon
       SET oldest_kept = greatest(oldest_kept, (m + interval '1 month')::date)
    RETURNING oldest_kept INTO horizon;
    IF to_regclass(part) IS NOT NULL THEN
        EXECUTE format('CREATE OR REPLACE TRIGGER readings_retired BEFORE INSERT ON %I'
                       ' FOR EACH ROW EXECUTE FUNCTION readings_refuse_retired()', part);
    END IF;
    LOCK TABLE readings_default IN SHARE MODE;
    PERFORM pg_notify('wattline_events', json_build_object('readings_horizon',
        extract(epoch FROM horizon::timestamp AT TIME ZONE 'UTC')::bigint)::text);
    RETURN horizon;
END;
$$;

-- Removes the raw readings of a closed month: DROP of its partition (the
-- readings' table is locked for the instant the drop needs; lock_timeout
-- makes a busy moment a failure the next pass retries rather than a queue
-- that stalls ingestion) and, for a month that sits in the default
-- partition, a DELETE of its rows there. Returns the rows so deleted.
CREATE FUNCTION readings_retire_month(month date) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
SET lock_timeout = '2s' AS $$
DECLARE
    m date := date_trunc('month', month)::date;
    part text := format('readings_%s', to_char(date_trunc('month', month), 'YYYY_MM'));
    removed bigint;
BEGIN
    IF (SELECT oldest_kept FROM readings_horizon) IS NULL
       OR m >= (SELECT oldest_kept FROM readings_horizon) THEN
        RAISE EXCEPTION 'month % is not closed', to_char(m, 'YYYY-MM')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass(part) IS NOT NULL THEN
        EXECUTE format('DROP TABLE %I', part);
    END IF;
    DELETE FROM readings_default
     WHERE ts >= m::timestamp AT TIME ZONE 'UTC'
       AND ts < (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$;

-- Functions are executable by PUBLIC unless revoked: these two only by their
-- owner and the roles granted them (the server's, by the default privileges
-- of migration 0011 where it exists).
REVOKE EXECUTE ON FUNCTION readings_close_month(date), readings_retire_month(date) FROM PUBLIC;
