-- What an administrator sees of a browser session (issue 14): when it began, when it was last
-- used, and from where. Copied from the signed-in session's data on every save; NULL for
-- pre-login sessions and for rows written before this migration.
ALTER TABLE sessions ADD COLUMN created_at INTEGER;
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER;
ALTER TABLE sessions ADD COLUMN client_ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
