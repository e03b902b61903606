-- A thread's rolling summary is one row, so the writers that fold older turns into it
-- (the history write's cut, the model's rolling summary) update that row in place
-- (INSERT ... ON CONFLICT) instead of racing to add a second one. Older duplicates a
-- race may have left go first (the read always took the newest).
DELETE FROM conversation_messages m
 WHERE m.role = 'summary'
   AND EXISTS (SELECT 1 FROM conversation_messages n
                WHERE n.workspace_id = m.workspace_id AND n.thread_key = m.thread_key
                  AND n.role = 'summary' AND n.id > m.id);
DROP INDEX IF EXISTS conversation_messages_summary;
CREATE UNIQUE INDEX conversation_messages_summary
    ON conversation_messages (workspace_id, thread_key) WHERE role = 'summary';

-- The longest tail of `t` that is at most `max_bytes` bytes of UTF-8, cut at a character
-- boundary: the history write's cut of a summary to its token budget (tokens are
-- estimated from UTF-8 bytes). Postgres' right() counts characters, not bytes.
CREATE OR REPLACE FUNCTION utf8_tail(t text, max_bytes integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    b bytea := convert_to(t, 'UTF8');
    start integer;
BEGIN
    IF octet_length(b) <= max_bytes THEN
        RETURN t;
    END IF;
    start := octet_length(b) - greatest(max_bytes, 0);  -- 0-based: the first byte kept
    LOOP  -- skip continuation bytes (10xxxxxx): start at a character's first byte
        EXIT WHEN start >= octet_length(b);
        EXIT WHEN get_byte(b, start) & 192 <> 128;
        start := start + 1;
    END LOOP;
    RETURN convert_from(substring(b FROM start + 1), 'UTF8');
END
$$;
