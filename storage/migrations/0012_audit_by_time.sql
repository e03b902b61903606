-- The audit retention purge (AUDIT_RETENTION_DAYS) deletes by age across workspaces.
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
