-- Who follows whom. The primary key serves "does A follow B" and A's following list;
-- the second index serves B's followers list and the feed fan-out to B's followers.
-- depends: 0001_create_users

CREATE TABLE follows (
    follower_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_followee ON follows (followee_id, follower_id);
-- Newest-first lists of followers / following, paginated on (created_at, other id).
CREATE INDEX follows_followers_page ON follows (followee_id, created_at DESC, follower_id DESC);
CREATE INDEX follows_following_page ON follows (follower_id, created_at DESC, followee_id DESC);
