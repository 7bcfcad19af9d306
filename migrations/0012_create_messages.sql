-- Direct messages: one conversation per pair of users, created by its first message.
-- depends: 0001_create_users

CREATE TABLE conversations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The pair in canonical order, so (a, b) and (b, a) are the same conversation.
    user_low    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_high   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (user_low < user_high)
);
CREATE UNIQUE INDEX conversations_pair ON conversations (user_low, user_high);

CREATE TABLE messages (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id  bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipient_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body             text NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
    created_at       timestamptz NOT NULL DEFAULT now()
);
-- A conversation's page, newest first; unread counts scan only past the read marker.
CREATE INDEX messages_conversation_id ON messages (conversation_id, id);
-- A user's stream (what a WebSocket replays after a reconnect): sent and received.
CREATE INDEX messages_recipient_id ON messages (recipient_id, id);
CREATE INDEX messages_sender_id ON messages (sender_id, id);

-- Each member's view of a conversation: the latest message (for the list) and the read marker.
CREATE TABLE conversation_members (
    conversation_id       bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id               bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    peer_id               bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_message_id       bigint NOT NULL,
    last_read_message_id  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_recent ON conversation_members (user_id, last_message_id DESC);

-- The head of each user's message stream. A send locks both users' rows (in id order), so
-- message ids reach each user's stream in commit order: "everything after id N" is exact.
CREATE TABLE mailboxes (
    user_id          bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_message_id  bigint NOT NULL DEFAULT 0
);
