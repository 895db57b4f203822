-- The audit log, and the two database roles.
--
-- The migrating role (the one running this, DATABASE_OWNER_URL) owns every
-- object. The server serves as a member of the NOLOGIN group wattline_server
-- (DATABASE_URL), which may read and write the application's tables but only
-- INSERT and SELECT audit_log: even a SQL injection could not rewrite history.

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- No foreign key: an entry outlives its actor and target (deleting a user
    -- must neither fail nor rewrite the entries that name it).
    actor_id    bigint,
    action      text NOT NULL CHECK (action IN (
                    'user.create', 'user.update', 'user.delete',
                    'device.create', 'device.update', 'device.delete', 'device.rotate_token',
                    'command.create', 'command.cancel', 'login.success', 'login.failure')),
    target_type text NOT NULL CHECK (target_type IN ('user', 'device', 'command')),
    target_id   bigint,
    changes     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(changes) = 'object'),
    client_addr inet,
    request_id  text
);

-- Newest first is by id (the list's cursor), alone or under each filter.
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id DESC);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, id DESC);
CREATE INDEX audit_log_action ON audit_log (action, id DESC);

-- Append-only for everyone, the owner included: only dropping the trigger
-- (which takes the owner, not the serving role) could change an entry.
CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();

-- The serving group role, and what it may do: what the server does at runtime
-- and no more (no CREATE anywhere; audit_log only INSERT and SELECT; the
-- migrations' bookkeeping only SELECT, for /readyz). Roles belong to the
-- cluster, so another database of it may be creating the same role at this
-- moment: that is no failure. An owner without CREATEROLE (a single-role setup,
-- where the server serves as the owner) skips all this unless a superuser made
-- the role beforehand; the trigger above still guards the log.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wattline_server') THEN
        BEGIN
            CREATE ROLE wattline_server NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role wattline_server not created (no CREATEROLE): serving as the owner';
                RETURN;
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO wattline_server', current_schema());
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I'
                   ' TO wattline_server', current_schema());
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO wattline_server',
                   current_schema());
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO wattline_server',
                   current_schema());
    -- Later migrations' objects get the same grants without a word; a migration
    -- only REVOKEs what must be narrower, as below.
    ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO wattline_server;
    ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES TO wattline_server;
    ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO wattline_server;
    REVOKE ALL ON audit_log FROM wattline_server;
    GRANT SELECT, INSERT ON audit_log TO wattline_server;
    REVOKE ALL ON schema_migrations FROM wattline_server;
    GRANT SELECT ON schema_migrations TO wattline_server;
END;
$$;

-- Ingestion creates the monthly partitions of readings on demand: they are
-- created as the owner (whose default privileges then grant them), so the
-- serving role never needs CREATE. search_path pinned: a definer function
-- must not resolve names through the caller's path.
ALTER FUNCTION readings_ensure_partitions(date, int)
    SECURITY DEFINER SET search_path = public, pg_temp;
