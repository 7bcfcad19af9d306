-- Uploaded files: metadata only; the bytes live in object storage under a generated key.
-- depends: 0001_create_users

CREATE TABLE files (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose       text NOT NULL CHECK (purpose IN ('avatar', 'resume', 'post_image')),
    content_type  text NOT NULL,
    size_bytes    bigint NOT NULL CHECK (size_bytes > 0),
    storage_key   text NOT NULL UNIQUE,
    sha256        bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_owner ON files (owner_id, purpose);
