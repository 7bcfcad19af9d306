ALTER TABLE users
    DROP COLUMN avatar_file_id,
    DROP COLUMN posts_count,
    DROP COLUMN following_count,
    DROP COLUMN followers_count;
