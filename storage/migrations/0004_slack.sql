-- Multi-workspace Slack: one bot per installed workspace (or org), its tokens
-- encrypted with storage.crypto (AAD bound to slack_bots/<id>/<column>), an
-- append-only log of installs, and single-use OAuth states for /slack/install.

CREATE TABLE slack_bots (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id               text NOT NULL,
    -- '' rather than NULL, so the natural key below is a plain UNIQUE constraint.
    enterprise_id           text NOT NULL DEFAULT '',
    team_id                 text NOT NULL DEFAULT '',
    is_enterprise_install   boolean NOT NULL DEFAULT false,
    app_id                  text,
    enterprise_name         text,
    team_name               text,
    bot_id                  text NOT NULL,
    bot_user_id             text NOT NULL,
    bot_scopes              text[] NOT NULL DEFAULT '{}',
    bot_token               bytea,
    bot_token_kid           text,
    bot_refresh_token       bytea,
    bot_refresh_token_kid   text,
    bot_token_expires_at    timestamptz,
    installed_at            timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (client_id, enterprise_id, team_id),
    CHECK ((bot_token IS NULL) = (bot_token_kid IS NULL)),
    CHECK ((bot_refresh_token IS NULL) = (bot_refresh_token_kid IS NULL))
);

CREATE TABLE slack_installations (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id               text NOT NULL,
    enterprise_id           text NOT NULL DEFAULT '',
    team_id                 text NOT NULL DEFAULT '',
    is_enterprise_install   boolean NOT NULL DEFAULT false,
    installer_user_id       text NOT NULL,
    app_id                  text,
    bot_id                  text,
    bot_scopes              text[] NOT NULL DEFAULT '{}',
    installed_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slack_installations_team
    ON slack_installations (client_id, enterprise_id, team_id, installed_at DESC);

CREATE TABLE slack_oauth_states (
    state_hash              bytea PRIMARY KEY,
    expires_at              timestamptz NOT NULL
);
CREATE INDEX slack_oauth_states_expiry ON slack_oauth_states (expires_at);
