-- Support chat: one conversation per client with the support team (every
-- admin), its messages, and read state per side.
--
-- The support side is one side: a client's message is unread until any admin
-- reads it. So read state lives on the message (read_at: when the first
-- reader of the other side read it), and a side's unread count is the other
-- side's messages with read_at NULL, whatever the number of admins.
--
-- activity orders "most recently active first": a sequence value taken at
-- creation and again with every message, unique, so one number is an exact
-- keyset cursor (timestamps can tie).

CREATE SEQUENCE chat_activity_seq;

CREATE TABLE conversations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A deleted client's conversation (and, by the cascade below, its
    -- messages) goes with it.
    user_id    bigint NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    activity   bigint NOT NULL DEFAULT nextval('chat_activity_seq'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX conversations_activity_idx ON conversations (activity DESC);

CREATE TABLE chat_messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- An admin who is deleted leaves its answers behind, unsigned.
    sender_id       bigint REFERENCES users (id) ON DELETE SET NULL,
    sender_role     text NOT NULL CHECK (sender_role IN ('admin', 'client')),
    -- Characters, not bytes; PostgreSQL text holds no NUL.
    text            text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 4000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    read_at         timestamptz
);

-- A conversation's messages, newest first (pages by before_id).
CREATE INDEX chat_messages_conversation_idx ON chat_messages (conversation_id, id DESC);
-- Unread counts and marking read: only unread rows are indexed.
CREATE INDEX chat_messages_unread_idx ON chat_messages (conversation_id, sender_role, id)
    WHERE read_at IS NULL;
-- The client's rate limit counts its messages of the last minute.
CREATE INDEX chat_messages_rate_idx ON chat_messages (conversation_id, created_at)
    WHERE sender_role = 'client';
