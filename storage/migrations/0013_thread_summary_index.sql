-- A thread's rolling summary of its older turns (role 'summary', one row per thread) is
-- found through this index, without walking the thread's other rows.
CREATE INDEX IF NOT EXISTS conversation_messages_summary
    ON conversation_messages (workspace_id, thread_key) WHERE role = 'summary';
