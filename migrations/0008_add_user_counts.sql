-- Profile counters, kept in the transaction that follows/unfollows or posts, and the avatar.
-- depends: 0004_create_follows 0005_create_files 0006_create_posts

ALTER TABLE users
    ADD COLUMN followers_count  integer NOT NULL DEFAULT 0 CHECK (followers_count >= 0),
    ADD COLUMN following_count  integer NOT NULL DEFAULT 0 CHECK (following_count >= 0),
    ADD COLUMN posts_count      integer NOT NULL DEFAULT 0 CHECK (posts_count >= 0),
    ADD COLUMN avatar_file_id   bigint REFERENCES files (id) ON DELETE SET NULL;
