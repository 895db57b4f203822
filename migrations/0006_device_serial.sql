-- A meter's own identifier, by which a broker message or an MQTT login may
-- name the device instead of its id. 1-64 characters of A-Za-z0-9_-, not all
-- digits (so it can never be mistaken for an id); '.', '/' and ':' are
-- excluded because MQTT topics and RabbitMQ user names give them meaning.
-- NULLs do not collide in a UNIQUE constraint, so devices without one coexist.

ALTER TABLE devices
    ADD COLUMN serial text UNIQUE
        CHECK (serial ~ '^[A-Za-z0-9_-]{1,64}$' AND serial !~ '^[0-9]+$');
