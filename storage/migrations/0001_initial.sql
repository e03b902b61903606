-- The first schema. Encrypted columns are bytea envelopes from storage.crypto,
-- with the key id beside them so rotation can find rows on an old key.

CREATE TABLE workspaces (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    frontend        text NOT NULL CHECK (frontend IN ('slack', 'discord', 'local')),
    external_id     text NOT NULL,
    name            text,
    bot_token       bytea,
    bot_token_kid   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (frontend, external_id),
    CHECK ((bot_token IS NULL) = (bot_token_kid IS NULL))
);

CREATE TABLE chat_users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id    bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    external_id     text NOT NULL,
    display_name    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, external_id)
);

CREATE TABLE linked_accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The opaque handle the model and the chat see instead of ids or tokens.
    ref             text NOT NULL UNIQUE,
    workspace_id    bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    owner_id        bigint NOT NULL REFERENCES chat_users (id) ON DELETE CASCADE,
    platform        text NOT NULL,
    external_id     text NOT NULL,
    handle          text NOT NULL,
    scopes          text[] NOT NULL DEFAULT '{}',
    token           bytea,
    token_kid       text,
    expires_at      timestamptz,
    status          text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'needs_relink')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, platform, external_id),
    CHECK ((token IS NULL) = (token_kid IS NULL))
);
CREATE INDEX linked_accounts_owner ON linked_accounts (workspace_id, owner_id, platform);

CREATE TABLE oauth_states (
    state_hash      bytea PRIMARY KEY,
    platform        text NOT NULL,
    workspace_id    bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    chat_user_id    bigint NOT NULL REFERENCES chat_users (id) ON DELETE CASCADE,
    code_verifier   bytea NOT NULL,
    code_verifier_kid text NOT NULL,
    reply_to        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

CREATE TABLE posts (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id          bigint NOT NULL REFERENCES linked_accounts (id) ON DELETE CASCADE,
    platform            text NOT NULL,
    platform_post_id    text,
    title               text,
    caption             text,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'uploading', 'processing', 'published', 'failed')),
    source              jsonb NOT NULL DEFAULT '{}',
    metadata            jsonb NOT NULL DEFAULT '{}',
    upload_session      bytea,
    upload_session_kid  text,
    bytes_total         bigint CHECK (bytes_total IS NULL OR bytes_total >= 0),
    bytes_confirmed     bigint NOT NULL DEFAULT 0 CHECK (bytes_confirmed >= 0),
    idempotency_key     text NOT NULL UNIQUE,
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- One post row maps to at most one platform post, and back.
    UNIQUE (platform, platform_post_id),
    CHECK ((upload_session IS NULL) = (upload_session_kid IS NULL))
);
CREATE INDEX posts_account ON posts (account_id, created_at DESC);
CREATE INDEX posts_unfinished ON posts (status) WHERE status IN ('pending', 'uploading');

CREATE TABLE metric_snapshots (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES linked_accounts (id) ON DELETE CASCADE,
    post_id         bigint REFERENCES posts (id) ON DELETE CASCADE,
    platform_post_id text,
    period          text NOT NULL DEFAULT 'lifetime',
    captured_at     timestamptz NOT NULL DEFAULT now(),
    metrics         jsonb NOT NULL
);
CREATE INDEX metric_snapshots_account ON metric_snapshots (account_id, captured_at DESC);
CREATE INDEX metric_snapshots_post
    ON metric_snapshots (account_id, platform_post_id, captured_at DESC)
    WHERE platform_post_id IS NOT NULL;

CREATE TABLE digest_subscriptions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id    bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id      text NOT NULL,
    local_time      time NOT NULL DEFAULT '09:00',
    time_zone       text NOT NULL DEFAULT 'UTC',
    enabled         boolean NOT NULL DEFAULT true,
    created_by      bigint REFERENCES chat_users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, channel_id)
);

CREATE TABLE digest_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES digest_subscriptions (id) ON DELETE CASCADE,
    local_date      date NOT NULL,
    status          text NOT NULL DEFAULT 'leased'
                    CHECK (status IN ('leased', 'posted', 'failed')),
    lease_owner     text,
    lease_expires_at timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    posted_at       timestamptz,
    message_ref     text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- A replica dying mid-digest never double-posts: one run per day per subscription.
    UNIQUE (subscription_id, local_date)
);

CREATE TABLE conversation_messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id    bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    thread_key      text NOT NULL,
    chat_user_id    bigint REFERENCES chat_users (id) ON DELETE SET NULL,
    role            text NOT NULL CHECK (role IN ('user', 'assistant', 'summary')),
    content         text NOT NULL,
    tokens          integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_messages_thread ON conversation_messages (workspace_id, thread_key, id);

CREATE TABLE pending_actions (
    id              uuid PRIMARY KEY,
    workspace_id    bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    chat_user_id    bigint NOT NULL REFERENCES chat_users (id) ON DELETE CASCADE,
    action          text NOT NULL,
    args            jsonb NOT NULL,
    args_hash       bytea NOT NULL,
    summary         text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'done', 'failed')),
    result          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    decided_at      timestamptz
);
CREATE INDEX pending_actions_user ON pending_actions (workspace_id, chat_user_id, status);

CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    workspace_id    bigint REFERENCES workspaces (id) ON DELETE SET NULL,
    chat_user_id    bigint REFERENCES chat_users (id) ON DELETE SET NULL,
    action          text NOT NULL,
    target          text,
    outcome         text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, at DESC);

-- Durable jobs for the worker (uploads, token refresh): leased, retried, resumable.
CREATE TABLE jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}',
    dedupe_key      text UNIQUE,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed')),
    run_at          timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 5,
    lease_owner     text,
    lease_expires_at timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_ready ON jobs (run_at) WHERE status IN ('queued', 'running');
