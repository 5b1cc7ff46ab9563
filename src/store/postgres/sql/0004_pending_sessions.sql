-- The PostgreSQL twin of the SQLite migration 0004: pre-login sessions (no signed-in user: a
-- login in flight) are bounded in number; the count is kept by triggers so that capping it
-- costs no scan, and the oldest are found through the partial index `sessions_pending`.
--
-- One difference, for concurrency: SQLite has one writer, so one counter row costs nothing
-- there; here concurrent transactions would queue on that one row lock until each commits. The
-- count is spread over 16 rows instead (a session adds to the row its id hashes to), and the
-- count of pending sessions is their sum.
CREATE TABLE session_stats (
    id      INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 16),
    pending BIGINT  NOT NULL
);
INSERT INTO session_stats (id, pending)
    SELECT slot, (SELECT COUNT(*) FROM sessions
                  WHERE user_id IS NULL AND 1 + (hashtext(id) & 15) = slot)
    FROM generate_series(1, 16) AS slot;

CREATE FUNCTION sessions_pending_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE session_stats SET pending = pending + 1 WHERE id = 1 + (hashtext(NEW.id) & 15);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE session_stats SET pending = pending - 1 WHERE id = 1 + (hashtext(OLD.id) & 15);
    ELSE
        UPDATE session_stats
            SET pending = pending + (NEW.user_id IS NULL)::int - (OLD.user_id IS NULL)::int
            WHERE id = 1 + (hashtext(NEW.id) & 15);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_pending_insert AFTER INSERT ON sessions
    FOR EACH ROW WHEN (NEW.user_id IS NULL) EXECUTE FUNCTION sessions_pending_count();
CREATE TRIGGER sessions_pending_delete AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.user_id IS NULL) EXECUTE FUNCTION sessions_pending_count();
CREATE TRIGGER sessions_pending_update AFTER UPDATE OF user_id ON sessions
    FOR EACH ROW WHEN ((OLD.user_id IS NULL) <> (NEW.user_id IS NULL))
    EXECUTE FUNCTION sessions_pending_count();

CREATE INDEX sessions_pending ON sessions (expires_at) WHERE user_id IS NULL;
