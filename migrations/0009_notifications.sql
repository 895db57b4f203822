-- Notifications beyond the open tab: per-user preferences, signed webhooks
-- fed by a durable outbox, forecasts, and offline meters.
--
-- Every event meant for a user (forecast, device_status, command, and alerts
-- for webhooks) goes through notification_enqueue(), called in the
-- transaction that made the event: its outbox rows exist if and only if the
-- event committed.

-- RFC 3339 in UTC as base/timefmt.c writes it: fractional seconds only when
-- there are some, trailing zeros dropped.
CREATE FUNCTION rfc3339(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM t)::bigint % 1000000 = 0 THEN ''
                ELSE rtrim(to_char(t AT TIME ZONE 'UTC', '.US'), '0') END
        || 'Z'
$$;

-- Offline meters. offline_due_at is last_seen_at + offline_after_s, written
-- by whoever writes either (ingestion, PATCH), so that the sweep is one range
-- scan of a partial index over the devices that are due, however many
-- devices there are. Devices without offline_after_s keep it NULL, so their
-- ingestion updates stay HOT (the indexed value never changes).
-- offline_since is set by the sweep (a conditional UPDATE only one instance
-- wins) and cleared by the next accepted reading.
ALTER TABLE devices
    ADD COLUMN offline_after_s integer CHECK (offline_after_s BETWEEN 60 AND 604800),
    ADD COLUMN offline_due_at timestamptz,
    ADD COLUMN offline_since timestamptz;

CREATE INDEX devices_offline_due_idx ON devices (offline_due_at)
    WHERE offline_since IS NULL AND offline_due_at IS NOT NULL;

-- The events each channel gets; a user without a row has the defaults.
CREATE TABLE notification_prefs (
    user_id    bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    websocket  text[] NOT NULL,
    webhook    text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (websocket <@ ARRAY['alert', 'forecast', 'command', 'device_status']),
    CHECK (webhook <@ ARRAY['alert', 'forecast', 'command', 'device_status'])
);

CREATE FUNCTION notification_wanted(uid bigint, ev text, channel text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT ev = ANY (CASE channel WHEN 'webhook' THEN p.webhook ELSE p.websocket END)
           FROM notification_prefs p WHERE p.user_id = uid),
        CASE channel WHEN 'webhook' THEN ev IN ('alert', 'device_status') ELSE true END)
$$;

-- secret_enc: nonce (12) || AES-256-GCM ciphertext || tag (16), under a key
-- derived from the server's JWT secret (base/secretbox.c): the secret must
-- be recoverable to sign, and a database dump alone does not give it away.
-- failing_since: the first failed attempt since the last success; after
-- WEBHOOK_FAIL_WINDOW_S of nothing but failures the webhook turns inactive.
CREATE TABLE webhooks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url           text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
    events        text[] NOT NULL CHECK (cardinality(events) >= 1
                      AND events <@ ARRAY['alert', 'forecast', 'command', 'device_status']),
    secret_enc    bytea NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    failing_since timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_user_idx ON webhooks (user_id, id);

-- One event for one user: the WebSocket message, exactly the bytes a webhook
-- receives and signs. Its id is Wattline-Event-Id.
CREATE TABLE notification_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event      text NOT NULL,
    payload    text NOT NULL,
    websocket  boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The outbox: one row per (webhook, event). A sender claims due rows with
-- FOR UPDATE SKIP LOCKED and pushes next_at past its attempt's timeout (a
-- lease), so an instance killed mid-attempt leaves the row to be retried.
CREATE TABLE webhook_deliveries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id   bigint NOT NULL REFERENCES notification_events (id) ON DELETE CASCADE,
    attempts   integer NOT NULL DEFAULT 0,
    state      text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    next_at    timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_at) WHERE state = 'pending';

-- Every attempt, as GET /me/webhooks/{id}/deliveries lists them.
CREATE TABLE webhook_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    webhook_id  bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    status_code integer,
    error       text,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_attempts_webhook_idx ON webhook_attempts (webhook_id, id DESC);

-- The hour of the device's newest forecast: ingestion reads it with the
-- device's row (which it locks anyway) and does not judge that hour again,
-- so an hour on course to go over costs one statement, not one per request.
ALTER TABLE devices ADD COLUMN forecast_hour timestamptz;

-- A projection over the limit, once per device and hour, like alerts.
CREATE TABLE forecasts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id       bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    hour_start      timestamptz NOT NULL,
    hour_kwh_so_far double precision NOT NULL,
    projected_kwh   double precision NOT NULL,
    max_hourly_kwh  double precision NOT NULL,
    at              timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, hour_start)
);

-- Records one event for uid and queues it for uid's active webhooks that
-- take it (when uid's preferences send it to webhooks). With to_sessions
-- (and the preference), announces it on wattline_events as {"notices":[id]}
-- for the WebSocket hub. Notifies wattline_outbox only when a delivery was
-- queued: NOTIFY serialises commits, so nothing is said when nothing is due.
-- Returns the event's id, or NULL when no channel takes it.
CREATE FUNCTION notification_enqueue(uid bigint, ev text, payload text, to_sessions boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    eid bigint;
    ws boolean := to_sessions AND notification_wanted(uid, ev, 'websocket');
    hooks bigint[];
BEGIN
    IF uid IS NULL THEN
        RETURN NULL;
    END IF;
    IF notification_wanted(uid, ev, 'webhook') THEN
        SELECT array_agg(id) INTO hooks FROM webhooks
         WHERE user_id = uid AND active AND ev = ANY (events);
    END IF;
    IF NOT ws AND hooks IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO notification_events (user_id, event, payload, websocket)
        VALUES (uid, ev, payload, ws) RETURNING id INTO eid;
    IF hooks IS NOT NULL THEN
        INSERT INTO webhook_deliveries (webhook_id, event_id)
            SELECT h, eid FROM unnest(hooks) AS h;
        PERFORM pg_notify('wattline_outbox', '');
    END IF;
    IF ws THEN
        PERFORM pg_notify('wattline_events', json_build_object('notices', json_build_array(eid))::text);
    END IF;
    RETURN eid;
END;
$$;

-- The message of a device_status event.
CREATE FUNCTION device_status_message(device_id bigint, device_name text, status text,
                                      last_seen_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('type', 'device_status', 'device_id', device_id,
        'device_name', device_name, 'status', status, 'last_seen_at', rfc3339(last_seen_at),
        'at', rfc3339(now()))::text
$$;

-- An alert just raised, for its owner's webhooks (its WebSocket path is the
-- alerts' own: db/events.c, live/replay.c). The message is the WebSocket one,
-- as api/resources.c renders an alert.
CREATE FUNCTION notification_enqueue_alert(alert_id bigint, dev bigint, hour_start timestamptz,
                                           hour_kwh double precision,
                                           max_hourly_kwh double precision,
                                           created_at timestamptz)
RETURNS bigint LANGUAGE sql AS $$
    SELECT notification_enqueue(d.owner_id, 'alert', json_build_object('type', 'alert',
        'alert', json_build_object('id', alert_id, 'device_id', d.id, 'device_name', d.name,
            'owner_id', d.owner_id, 'hour_start', rfc3339(hour_start), 'hour_kwh', hour_kwh,
            'max_hourly_kwh', max_hourly_kwh, 'created_at', rfc3339(created_at),
            'acknowledged_at', NULL))::text, false)
    FROM devices d WHERE d.id = dev
$$;
