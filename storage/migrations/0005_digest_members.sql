-- Whose figures a channel's digest shows: only owners who opted in to that channel.
-- Existing digests keep their creator's accounts (before this, they showed everyone's).
CREATE TABLE digest_members (
    subscription_id bigint NOT NULL REFERENCES digest_subscriptions (id) ON DELETE CASCADE,
    chat_user_id    bigint NOT NULL REFERENCES chat_users (id) ON DELETE CASCADE,
    joined_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, chat_user_id)
);

INSERT INTO digest_members (subscription_id, chat_user_id)
SELECT id, created_by FROM digest_subscriptions WHERE created_by IS NOT NULL;
