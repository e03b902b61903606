-- Account links bound to the person who asked for them (agent/ops/linking.py).

-- The browser that pressed "Continue" on the start page (SHA-256 of its cookie
-- secret), the Sign in with Slack nonce (SHA-256), and when the chat user's own
-- sign-in (Slack or Discord) matched the user the link was made for.
ALTER TABLE oauth_states
    ADD COLUMN browser_hash bytea,
    ADD COLUMN nonce_hash   bytea,
    ADD COLUMN verified_at  timestamptz;

-- Links whose OAuth finished but which are not usable yet: waiting either for the
-- requester to type the confirmation code shown in the browser (`code_hash`), or
-- for the approval of the account's current owner (`approval_id`, a pending_actions
-- row bound to that owner). Kept out of linked_accounts so that no reader of
-- linked_accounts (accounts, metrics, uploads, digests, token refresh) can ever
-- treat one as usable. The token is encrypted like linked_accounts.token.
CREATE TABLE pending_links (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id        bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    requester_id        bigint NOT NULL REFERENCES chat_users (id) ON DELETE CASCADE,
    platform            text NOT NULL,
    external_id         text NOT NULL,
    handle              text NOT NULL,
    display_name        text NOT NULL,
    scopes              text[] NOT NULL DEFAULT '{}',
    token               bytea NOT NULL,
    token_kid           text NOT NULL,
    token_expires_at    timestamptz,
    reply_to            jsonb NOT NULL DEFAULT '{}',
    code_hash           bytea,
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    approval_id         uuid UNIQUE,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    -- Exactly one of the two waits.
    CHECK ((code_hash IS NULL) <> (approval_id IS NULL))
);
CREATE INDEX pending_links_requester ON pending_links (workspace_id, requester_id);
CREATE INDEX pending_links_expiry ON pending_links (expires_at);

-- An approval made outside a conversation (a link request for an account's current
-- owner) has shown_at NULL until it is put in front of that person; approvals asked
-- in a conversation are shown at once (the default).
ALTER TABLE pending_actions ADD COLUMN shown_at timestamptz DEFAULT now();
CREATE INDEX pending_actions_unshown
    ON pending_actions (workspace_id, chat_user_id) WHERE shown_at IS NULL;
