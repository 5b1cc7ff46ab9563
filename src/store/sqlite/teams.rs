//! The `teams`, `role_bindings` and `mappings` tables: the config file's declarations, kept
//! equal to the file by a config sync (`crate::membership::sync`). Also the memberships part
//! of [`SqliteTx`]'s operations, which spans these tables and `memberships`.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::{SqliteTx, memberships};
use crate::domain::reconcile::MembershipRow;
use crate::store::error::Result;
use crate::store::memberships::{ConfigTables, StoredMembership, TeamMembers};
use crate::store::port::{MembershipReads, MembershipWrites};

/// The stored teams, id → name.
pub fn names(conn: &Connection) -> Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM teams")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn tables(conn: &Connection) -> Result<ConfigTables> {
    let strings3 = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, String, String)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    };
    let mut stmt = conn.prepare_cached("SELECT team_id, scope, role FROM role_bindings")?;
    let bindings = stmt
        .query_map([], strings3)?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare_cached("SELECT provider, group_key, team_id FROM mappings")?;
    let mappings = stmt
        .query_map([], strings3)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ConfigTables { bindings, mappings })
}

fn upsert(conn: &Connection, id: &str, name: &str, now: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO teams (id, name, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
         WHERE teams.name <> excluded.name",
    )?
    .execute(params![id, name, now])?;
    Ok(())
}

fn replace_tables(conn: &Connection, t: &ConfigTables) -> Result<()> {
    conn.execute("DELETE FROM role_bindings", [])?;
    conn.execute("DELETE FROM mappings", [])?;
    for (team, scope, role) in &t.bindings {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO role_bindings (team_id, scope, role) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![team, scope, role])?;
    }
    for (provider, group, team) in &t.mappings {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO mappings (provider, group_key, team_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![provider, group, team])?;
    }
    Ok(())
}

impl MembershipReads for SqliteTx<'_> {
    fn memberships(&self, user_id: i64) -> Result<Vec<StoredMembership>> {
        memberships::detailed(self.conn, user_id)
    }

    fn team_members(&self, limit: usize) -> Result<TeamMembers> {
        memberships::team_members(self.conn, limit)
    }

    fn team_names(&self) -> Result<BTreeMap<String, String>> {
        names(self.conn)
    }

    fn config_tables(&self) -> Result<ConfigTables> {
        tables(self.conn)
    }
}

impl MembershipWrites for SqliteTx<'_> {
    fn add_membership(&self, user_id: i64, row: &MembershipRow, now: &str) -> Result<()> {
        memberships::add(self.conn, user_id, row, now)
    }

    fn remove_membership(&self, user_id: i64, row: &MembershipRow) -> Result<()> {
        memberships::remove(self.conn, user_id, row)
    }

    fn confirm_membership(&self, user_id: i64, row: &MembershipRow, now: &str) -> Result<()> {
        memberships::confirm(self.conn, user_id, row, now)
    }

    fn upsert_team(&self, id: &str, name: &str, now: &str) -> Result<()> {
        upsert(self.conn, id, name, now)
    }

    fn delete_team(&self, id: &str) -> Result<()> {
        self.conn.execute("DELETE FROM teams WHERE id = ?1", [id])?;
        Ok(())
    }

    fn replace_config_tables(&self, tables: &ConfigTables) -> Result<()> {
        replace_tables(self.conn, tables)
    }
}
