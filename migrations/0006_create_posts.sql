-- Posts. like_count is kept in the same transaction as the likes rows (exact, O(1) to read).
-- depends: 0001_create_users 0005_create_files

CREATE TABLE posts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body           text NOT NULL,
    image_file_id  bigint REFERENCES files (id) ON DELETE SET NULL,
    like_count     integer NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- The feed (fan-out on read): per followed author, newest first, keyset on id.
CREATE INDEX posts_author_id ON posts (author_id, id DESC);
-- Trending: posts of the recent window.
CREATE INDEX posts_created_at ON posts (created_at);
