-- Stored first responses of create requests, keyed by the caller's Idempotency-Key.
-- depends: 0001_create_users

CREATE TABLE idempotency_keys (
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key           text NOT NULL,
    route         text NOT NULL,
    request_hash  bytea NOT NULL,
    status        smallint NOT NULL,
    body          bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
