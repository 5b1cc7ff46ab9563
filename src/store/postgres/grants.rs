//! `refresh_grants` on PostgreSQL.
