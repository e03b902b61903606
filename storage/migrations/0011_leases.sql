-- Named leases: one holder at a time, for as long as it keeps renewing (storage/leases.py).
-- The Discord gateway claims one per shard, so no shard runs in two processes at once.
CREATE TABLE IF NOT EXISTS leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);
