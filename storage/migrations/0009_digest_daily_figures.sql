-- One row per linked account and day: that day's figures, as last read.
-- Filled from every metrics read (a one-day period's totals, and each day of a
-- series); the digest's deltas compare a day with the latest earlier row, and its
-- chart draws the last 14 rows. `metrics` is normalized name -> {"value", "source"}.
CREATE TABLE IF NOT EXISTS account_daily_figures (
    account_id      bigint NOT NULL REFERENCES linked_accounts (id) ON DELETE CASCADE,
    day             date NOT NULL,
    metrics         jsonb NOT NULL,
    captured_at     timestamptz NOT NULL,
    PRIMARY KEY (account_id, day)
);
