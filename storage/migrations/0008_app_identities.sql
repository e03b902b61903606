-- The companion app's users (Supabase auth) tied to chat users (bot/api/).

-- A one-time code shown privately in chat by `connect app`, entered in the app.
-- Kept as an HMAC under a key derived from TOKEN_ENCRYPTION_KEYS (never the code),
-- short-lived, single use: claiming deletes the row.
CREATE TABLE app_connect_codes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_user_id    bigint NOT NULL REFERENCES chat_users (id) ON DELETE CASCADE,
    code_hash       bytea NOT NULL UNIQUE,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX app_connect_codes_user ON app_connect_codes (chat_user_id);

-- A verified tie: the Supabase user `subject` (the JWT's `sub`) acts as this chat user.
-- One chat user has at most one app user; one app user has at most one chat user per
-- workspace, and may have several across workspaces.
CREATE TABLE app_identities (
    chat_user_id    bigint PRIMARY KEY REFERENCES chat_users (id) ON DELETE CASCADE,
    workspace_id    bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    subject         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subject, workspace_id)
);
