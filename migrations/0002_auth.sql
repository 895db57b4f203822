-- Sessions and login throttling.

-- A login starts a family of refresh tokens; each refresh spends the
-- presented token and adds its successor to the same family. Revocation is
-- always of a whole family (logout, or a spent token presented again), so the
-- revoked mark lives here: a token is live only while its family is not
-- revoked, which also covers a successor committed just after a revocation.
CREATE TABLE refresh_families (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE INDEX refresh_families_user_idx ON refresh_families (user_id);

-- Refresh tokens are stored only as the SHA-256 of the secret (hex).
CREATE TABLE refresh_tokens (
    token_hash text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    family_id  bigint NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz -- spent: set when rotated
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- Failed logins per account, keyed by the lower-cased email as typed (so an
-- unknown email is throttled like a real one). See handlers/throttle.h.
CREATE TABLE login_failures (
    email_key    text PRIMARY KEY,
    failures     integer NOT NULL CHECK (failures >= 0),
    window_start timestamptz NOT NULL,
    locked_until timestamptz,
    expires_at   timestamptz NOT NULL -- after this the row affects nothing
);

CREATE INDEX login_failures_expires_idx ON login_failures (expires_at);
