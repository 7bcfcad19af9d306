-- One like per user per post: the primary key makes a repeated like a no-op.
-- depends: 0006_create_posts

CREATE TABLE likes (
    post_id     bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX likes_user ON likes (user_id, post_id);
