//! The `signing_keys` and `rsa_signing_keys` tables on PostgreSQL (twin of
//! `store/sqlite/signing_keys.rs`).

use tokio_postgres::Row;

use super::{PgTx, get};
use crate::store::error::Result;
use crate::store::keys::{StoredKey, StoredRsaKey};
use crate::store::port::{KeyReads, KeyWrites};

const COLUMNS: &str = "kid, private_der, public_x, public_y, created_at, retired_at, publish_until";

fn from_row(r: &Row) -> Result<StoredKey> {
    Ok(StoredKey {
        kid: get(r, 0)?,
        private_der: get(r, 1)?,
        x: get(r, 2)?,
        y: get(r, 3)?,
        created_at: get(r, 4)?,
        retired_at: get(r, 5)?,
        publish_until: get(r, 6)?,
    })
}

const RSA_COLUMNS: &str =
    "kid, private_der, public_n, public_e, created_at, retired_at, publish_until";

fn rsa_from_row(r: &Row) -> Result<StoredRsaKey> {
    Ok(StoredRsaKey {
        kid: get(r, 0)?,
        private_der: get(r, 1)?,
        n: get(r, 2)?,
        e: get(r, 3)?,
        created_at: get(r, 4)?,
        retired_at: get(r, 5)?,
        publish_until: get(r, 6)?,
    })
}

/// The INSERT of an RS256 key.
const RSA_INSERT: &str = "INSERT INTO rsa_signing_keys (kid, private_der, public_n, public_e, created_at, retired_at, publish_until)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

impl PgTx<'_> {
    fn current_rsa_key(&self) -> Result<Option<StoredRsaKey>> {
        let sql = format!("SELECT {RSA_COLUMNS} FROM rsa_signing_keys WHERE retired_at IS NULL");
        self.query_opt(&sql, &[])?
            .as_ref()
            .map(rsa_from_row)
            .transpose()
    }

    fn current_key(&self) -> Result<Option<StoredKey>> {
        let sql = format!("SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL");
        self.query_opt(&sql, &[])?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    fn insert_key(&self, key: &StoredKey) -> Result<()> {
        self.execute(
            "INSERT INTO signing_keys (kid, private_der, public_x, public_y, created_at, retired_at, publish_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &key.kid,
                &key.private_der,
                &key.x,
                &key.y,
                &key.created_at,
                &key.retired_at,
                &key.publish_until,
            ],
        )?;
        Ok(())
    }
}

impl KeyReads for PgTx<'_> {
    fn published_keys(&self, now: i64) -> Result<Vec<StoredKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR publish_until > $1
             ORDER BY retired_at IS NOT NULL, created_at DESC, kid"
        );
        self.query(&sql, &[&now])?.iter().map(from_row).collect()
    }

    fn published_rsa_keys(&self, now: i64) -> Result<Vec<StoredRsaKey>> {
        let sql = format!(
            "SELECT {RSA_COLUMNS} FROM rsa_signing_keys WHERE retired_at IS NULL OR publish_until > $1
             ORDER BY retired_at IS NOT NULL, created_at DESC, kid"
        );
        self.query(&sql, &[&now])?
            .iter()
            .map(rsa_from_row)
            .collect()
    }
}

impl KeyWrites for PgTx<'_> {
    fn insert_key_if_none(&self, key: &StoredKey) -> Result<bool> {
        // One statement, so replicas starting together end with one signing key: the partial
        // unique index on the current key turns the loser's insert into nothing.
        Ok(self.execute(
            "INSERT INTO signing_keys (kid, private_der, public_x, public_y, created_at, retired_at, publish_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT ((true)) WHERE retired_at IS NULL DO NOTHING",
            &[
                &key.kid,
                &key.private_der,
                &key.x,
                &key.y,
                &key.created_at,
                &key.retired_at,
                &key.publish_until,
            ],
        )? == 1)
    }

    fn rotate_key(&self, key: &StoredKey, now: i64, previous_until: i64) -> Result<Option<String>> {
        let previous = self.current_key()?.map(|k| k.kid);
        self.execute(
            "UPDATE signing_keys SET retired_at = $1, publish_until = $2 WHERE retired_at IS NULL",
            &[&now, &previous_until],
        )?;
        self.insert_key(key)?;
        self.execute(
            "DELETE FROM signing_keys WHERE publish_until <= $1",
            &[&now],
        )?;
        Ok(previous)
    }

    fn insert_rsa_key_if_none(&self, key: &StoredRsaKey) -> Result<bool> {
        // One statement, as for the ES256 key: two replicas racing (a reload that added the
        // first client reaches both) end with one RS256 key.
        let sql = format!("{RSA_INSERT} ON CONFLICT ((true)) WHERE retired_at IS NULL DO NOTHING");
        Ok(self.execute(
            &sql,
            &[
                &key.kid,
                &key.private_der,
                &key.n,
                &key.e,
                &key.created_at,
                &key.retired_at,
                &key.publish_until,
            ],
        )? == 1)
    }

    fn rotate_rsa_key(
        &self,
        key: &StoredRsaKey,
        now: i64,
        previous_until: i64,
    ) -> Result<Option<String>> {
        let previous = self.current_rsa_key()?.map(|k| k.kid);
        self.execute(
            "UPDATE rsa_signing_keys SET retired_at = $1, publish_until = $2 WHERE retired_at IS NULL",
            &[&now, &previous_until],
        )?;
        self.execute(
            RSA_INSERT,
            &[
                &key.kid,
                &key.private_der,
                &key.n,
                &key.e,
                &key.created_at,
                &key.retired_at,
                &key.publish_until,
            ],
        )?;
        self.execute(
            "DELETE FROM rsa_signing_keys WHERE publish_until <= $1",
            &[&now],
        )?;
        Ok(previous)
    }
}
