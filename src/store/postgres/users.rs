//! The `users` table on PostgreSQL (twin of `store/sqlite/users.rs`).

use tokio_postgres::Row;

use super::{PgTx, big, get};
use crate::store::error::{Result, StoreError};
use crate::store::port::{UserReads, UserWrites};
use crate::store::users::{Linked, LoginProfile, NewIdentity, Profile, UserRecord};

const COLUMNS: &str = "id, public_id, provider, subject, email, email_verified, name, active,
    session_generation, claims_groups, claims_groups_at, last_login_at";

fn from_row(r: &Row) -> Result<UserRecord> {
    let groups: Option<String> = get(r, 9)?;
    Ok(UserRecord {
        id: get(r, 0)?,
        public_id: get(r, 1)?,
        provider: get(r, 2)?,
        subject: get(r, 3)?,
        email: get(r, 4)?,
        email_verified: get(r, 5)?,
        name: get(r, 6)?,
        active: get(r, 7)?,
        session_generation: get(r, 8)?,
        claims_groups: groups.map(|g| serde_json::from_str(&g)).transpose()?,
        claims_groups_at: get(r, 10)?,
        last_login_at: get(r, 11)?,
    })
}

impl PgTx<'_> {
    fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE id = $1{}",
            self.lock_clause()
        );
        self.query_opt(&sql, &[&id])?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    fn user_by_subject_(&self, provider: &str, subject: &str) -> Result<Option<UserRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE provider = $1 AND subject = $2{}",
            self.lock_clause()
        );
        self.query_opt(&sql, &[&provider, &subject])?
            .as_ref()
            .map(from_row)
            .transpose()
    }
}

impl UserReads for PgTx<'_> {
    fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        self.user_by_id(id)
    }

    fn user_by_subject(&self, provider: &str, subject: &str) -> Result<Option<UserRecord>> {
        self.user_by_subject_(provider, subject)
    }

    fn find_users(&self, key: &str) -> Result<Vec<UserRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE lower(email) = lower($1) OR public_id = $1
             OR provider || ':' || subject = $1 ORDER BY id"
        );
        self.query(&sql, &[&key])?.iter().map(from_row).collect()
    }

    fn user_ids(&self) -> Result<Vec<i64>> {
        self.query("SELECT id FROM users ORDER BY id", &[])?
            .iter()
            .map(|r| get(r, 0))
            .collect()
    }

    fn users_page(
        &self,
        search: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<UserRecord>, i64)> {
        let search = search.map(str::trim).filter(|s| !s.is_empty());
        let pattern = search.map(|s| {
            format!(
                "%{}%",
                s.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        // SQLite's LIKE folds ASCII case; ILIKE folds by the locale.
        let filter = "($1::text IS NULL OR email ILIKE $1 ESCAPE '\\' OR name ILIKE $1 ESCAPE '\\'
                       OR subject ILIKE $1 ESCAPE '\\' OR public_id = $2)";
        let total: i64 = get(
            &self.query_one(
                &format!("SELECT COUNT(*) FROM users WHERE {filter}"),
                &[&pattern, &search],
            )?,
            0,
        )?;
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE {filter}
             ORDER BY lower(email) NULLS FIRST, id LIMIT $3 OFFSET $4"
        );
        let rows = self.query(&sql, &[&pattern, &search, &big(limit), &big(offset)])?;
        let users = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok((users, total))
    }
}

impl UserWrites for PgTx<'_> {
    fn upsert_login_user(&self, p: &LoginProfile, now: &str) -> Result<UserRecord> {
        let groups = p
            .claims_groups
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let public_id = crate::domain::ids::random_id();
        self.changed_cached_rows();
        self.execute(
            "INSERT INTO users (public_id, provider, subject, email, email_verified, name,
                                claims_groups, claims_groups_at, created_at, updated_at, last_login_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7::text,
                     CASE WHEN $7::text IS NULL THEN NULL ELSE $8::text END, $8, $8, $8)
             ON CONFLICT (provider, subject) DO UPDATE SET
                email = excluded.email,
                email_verified = excluded.email_verified,
                name = excluded.name,
                claims_groups = COALESCE(excluded.claims_groups, users.claims_groups),
                claims_groups_at = COALESCE(excluded.claims_groups_at, users.claims_groups_at),
                updated_at = excluded.updated_at,
                last_login_at = excluded.last_login_at",
            &[
                &public_id,
                &p.provider,
                &p.subject,
                &p.email,
                &p.email_verified,
                &p.name,
                &groups,
                &now,
            ],
        )?;
        self.user_by_subject_(&p.provider, &p.subject)?
            .ok_or(StoreError::NotFound)
    }

    fn link_identity(&self, who: &NewIdentity<'_>, now: &str) -> Result<Linked> {
        let row = self.query_one(
            "INSERT INTO users (public_id, provider, subject, email, email_verified, name, active,
                                created_at, updated_at)
             VALUES ($1, $2, $3, $4, false, $5, $6, $7, $7)
             ON CONFLICT (provider, subject) DO UPDATE SET active = excluded.active,
                updated_at = excluded.updated_at
             RETURNING id, (xmax = 0)",
            &[
                &crate::domain::ids::random_id(),
                &who.provider,
                &who.subject,
                &who.email,
                &who.name,
                &who.active,
                &now,
            ],
        )?;
        // A new row cannot be in anyone's cache; an existing one may have changed `active`.
        let created: bool = get(&row, 1)?;
        if !created {
            self.changed_cached_rows();
        }
        Ok(Linked {
            user_id: get(&row, 0)?,
            created,
        })
    }

    fn set_user_active(&self, user_id: i64, active: bool, now: &str) -> Result<bool> {
        let changed = self.execute(
            "UPDATE users SET active = $2, updated_at = $3 WHERE id = $1 AND active <> $2",
            &[&user_id, &active, &now],
        )? > 0;
        if changed {
            self.changed_cached_rows();
        }
        Ok(changed)
    }

    fn rekey_user(&self, user_id: i64, subject: &str, now: &str) -> Result<()> {
        self.changed_cached_rows();
        self.execute_unique(
            "UPDATE users SET subject = $2, updated_at = $3 WHERE id = $1",
            &[&user_id, &subject, &now],
            "the subject belongs to another identity",
        )?;
        Ok(())
    }

    fn set_user_profile(&self, user_id: i64, p: &Profile, now: &str) -> Result<()> {
        // Other replicas' user caches (and the /auth answers keyed by the profile) follow.
        self.changed_cached_rows();
        self.execute(
            "UPDATE users SET name = $2, email = $3, email_verified = $4, updated_at = $5
             WHERE id = $1",
            &[&user_id, &p.name, &p.email, &p.email_verified, &now],
        )?;
        Ok(())
    }
}
