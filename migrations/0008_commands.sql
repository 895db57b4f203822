-- Commands to devices (issue 16): a persisted state machine, delivered at
-- least once. Every transition is one UPDATE guarded by the current status
-- (db/commands.c); expiry is also enforced when reading: a command whose
-- expires_at has passed is never delivered and reads "expired" even before
-- the sweep stores it.

CREATE TABLE commands (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name ~ '^[a-z0-9_.-]{1,64}$'),
    params       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'sent', 'succeeded', 'failed', 'expired', 'canceled')),
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_by   bigint REFERENCES users (id) ON DELETE SET NULL,
    alert_id     bigint REFERENCES alerts (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    sent_at      timestamptz,
    -- not redelivered before this: the lock of the last delivery
    locked_until timestamptz,
    completed_at timestamptz,
    result       jsonb CHECK (result IS NULL OR jsonb_typeof(result) = 'object'),
    error        text
);

-- Deliverable commands of a device, oldest first, and its unfinished count
-- (the 50-per-device cap): both read only the unfinished rows.
CREATE INDEX commands_unfinished_idx ON commands (device_id, id)
    WHERE status IN ('queued', 'sent');
-- A device's commands, newest first (the REST list).
CREATE INDEX commands_device_idx ON commands (device_id, id DESC);
-- The sweep: unfinished commands by expiry.
CREATE INDEX commands_expiry_idx ON commands (expires_at)
    WHERE status IN ('queued', 'sent');
-- Automation queues exactly one command per alert, even if retried.
CREATE UNIQUE INDEX commands_alert_idx ON commands (alert_id) WHERE alert_id IS NOT NULL;

-- What to queue when one of the device's alerts is raised: NULL or
-- {"name", "params"} (checked by the API like a command).
ALTER TABLE devices
    ADD COLUMN over_limit_command jsonb
        CHECK (over_limit_command IS NULL OR jsonb_typeof(over_limit_command) = 'object');
