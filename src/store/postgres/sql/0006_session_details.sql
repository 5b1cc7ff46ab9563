-- The PostgreSQL twin of the SQLite migration 0006: what an administrator sees of a browser
-- session (when it began, when it was last used, from where); unix seconds.
ALTER TABLE sessions ADD COLUMN created_at BIGINT;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
ALTER TABLE sessions ADD COLUMN client_ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
