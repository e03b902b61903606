-- Scheduled posts (#17): when a post is due, and each chat user's own time zone.
-- publish_at NULL: post now (every row before this migration).
ALTER TABLE posts ADD COLUMN IF NOT EXISTS publish_at timestamptz;
CREATE INDEX IF NOT EXISTS posts_publish_at ON posts (publish_at) WHERE publish_at IS NOT NULL;

-- The `timezone Area/City` setting (an IANA name); NULL: not set.
ALTER TABLE chat_users ADD COLUMN IF NOT EXISTS time_zone text;
