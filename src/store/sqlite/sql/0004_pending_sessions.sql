-- Pre-login sessions (no signed-in user: a login in flight) are bounded in number: the count is
-- kept here by triggers so that capping it costs no scan, and the oldest are found through a
-- partial index (security case of the hardening round, docs/security-cases.md section I).
CREATE TABLE session_stats (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    pending INTEGER NOT NULL
);
INSERT INTO session_stats (id, pending)
    VALUES (1, (SELECT COUNT(*) FROM sessions WHERE user_id IS NULL));

CREATE TRIGGER sessions_pending_insert AFTER INSERT ON sessions
    WHEN NEW.user_id IS NULL
BEGIN
    UPDATE session_stats SET pending = pending + 1 WHERE id = 1;
END;

CREATE TRIGGER sessions_pending_delete AFTER DELETE ON sessions
    WHEN OLD.user_id IS NULL
BEGIN
    UPDATE session_stats SET pending = pending - 1 WHERE id = 1;
END;

CREATE TRIGGER sessions_pending_update AFTER UPDATE OF user_id ON sessions
    WHEN (OLD.user_id IS NULL) != (NEW.user_id IS NULL)
BEGIN
    UPDATE session_stats
        SET pending = pending + (NEW.user_id IS NULL) - (OLD.user_id IS NULL)
        WHERE id = 1;
END;

CREATE INDEX sessions_pending ON sessions (expires_at) WHERE user_id IS NULL;
