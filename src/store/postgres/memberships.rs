//! `memberships`, `teams`, `role_bindings` and `mappings` on PostgreSQL (twins of
//! `store/sqlite/memberships.rs` and `teams.rs`).

use std::collections::BTreeMap;

use super::{PgTx, big, get};
use crate::domain::TeamId;
use crate::domain::reconcile::{MembershipRow, Source};
use crate::store::error::{Result, StoreError};
use crate::store::memberships::{ConfigTables, StoredMembership, TeamMemberRow, TeamMembers};
use crate::store::port::{MembershipReads, MembershipWrites};

impl MembershipReads for PgTx<'_> {
    fn memberships(&self, user_id: i64) -> Result<Vec<StoredMembership>> {
        let rows = self.query(
            "SELECT team_id, source, via, since, confirmed_at FROM memberships
             WHERE user_id = $1 ORDER BY team_id COLLATE \"C\", source COLLATE \"C\", via COLLATE \"C\"",
            &[&user_id],
        )?;
        rows.iter()
            .map(|r| {
                let team: String = get(r, 0)?;
                let source: String = get(r, 1)?;
                Ok(StoredMembership {
                    row: MembershipRow {
                        team: TeamId::parse(&team)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        source: Source::parse(&source).ok_or_else(|| {
                            StoreError::Corrupt(format!("membership source {source}"))
                        })?,
                        via: get(r, 2)?,
                    },
                    since: get(r, 3)?,
                    confirmed_at: get(r, 4)?,
                })
            })
            .collect()
    }

    fn team_members(&self, limit: usize) -> Result<TeamMembers> {
        let mut out = TeamMembers::new();
        for r in self.query(
            "SELECT team_id, COUNT(DISTINCT user_id) FROM memberships GROUP BY team_id",
            &[],
        )? {
            out.insert(get(&r, 0)?, (get(&r, 1)?, Vec::new()));
        }
        for (team, (_, rows)) in out.iter_mut() {
            let members = self.query(
                "SELECT u.public_id, COALESCE(u.email, u.provider || ':' || u.subject) AS label,
                        m.source, m.via
                 FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.team_id = $1 ORDER BY lower(COALESCE(u.email, u.provider || ':' || u.subject)), m.source LIMIT $2",
                &[team, &big(limit)],
            )?;
            *rows = members
                .iter()
                .map(|r| {
                    Ok(TeamMemberRow {
                        public_id: get(r, 0)?,
                        label: get(r, 1)?,
                        source: get(r, 2)?,
                        via: get(r, 3)?,
                    })
                })
                .collect::<Result<_>>()?;
        }
        Ok(out)
    }

    fn team_names(&self) -> Result<BTreeMap<String, String>> {
        self.query("SELECT id, name FROM teams", &[])?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .collect()
    }

    fn config_tables(&self) -> Result<ConfigTables> {
        let three = |sql: &str| -> Result<Vec<(String, String, String)>> {
            self.query(sql, &[])?
                .iter()
                .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?)))
                .collect()
        };
        Ok(ConfigTables {
            bindings: three("SELECT team_id, scope, role FROM role_bindings")?,
            mappings: three("SELECT provider, group_key, team_id FROM mappings")?,
        })
    }
}

impl MembershipWrites for PgTx<'_> {
    // The reconcile decided these rows from what it read; nobody reads the writes back in
    // the transaction, so they go with the next statement (see `PgTx::execute_later`).
    fn add_membership(&self, user_id: i64, row: &MembershipRow, now: &str) -> Result<()> {
        self.execute_later(
            "INSERT INTO memberships (user_id, team_id, source, via, since, confirmed_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
            vec![
                Box::new(user_id),
                Box::new(row.team.as_str().to_owned()),
                Box::new(row.source.as_str()),
                Box::new(row.via.clone()),
                Box::new(now.to_owned()),
            ],
        )
    }

    fn remove_membership(&self, user_id: i64, row: &MembershipRow) -> Result<()> {
        self.execute_later(
            "DELETE FROM memberships WHERE user_id = $1 AND team_id = $2 AND source = $3 AND via = $4",
            vec![
                Box::new(user_id),
                Box::new(row.team.as_str().to_owned()),
                Box::new(row.source.as_str()),
                Box::new(row.via.clone()),
            ],
        )
    }

    fn confirm_membership(&self, user_id: i64, row: &MembershipRow, now: &str) -> Result<()> {
        self.execute_later(
            "UPDATE memberships SET confirmed_at = $5
             WHERE user_id = $1 AND team_id = $2 AND source = $3 AND via = $4",
            vec![
                Box::new(user_id),
                Box::new(row.team.as_str().to_owned()),
                Box::new(row.source.as_str()),
                Box::new(row.via.clone()),
                Box::new(now.to_owned()),
            ],
        )
    }

    fn upsert_team(&self, id: &str, name: &str, now: &str) -> Result<()> {
        self.execute(
            "INSERT INTO teams (id, name, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
             WHERE teams.name <> excluded.name",
            &[&id, &name, &now],
        )?;
        Ok(())
    }

    fn delete_team(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM teams WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn replace_config_tables(&self, t: &ConfigTables) -> Result<()> {
        self.execute("DELETE FROM role_bindings", &[])?;
        self.execute("DELETE FROM mappings", &[])?;
        for (team, scope, role) in &t.bindings {
            self.execute(
                "INSERT INTO role_bindings (team_id, scope, role) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[team, scope, role],
            )?;
        }
        for (provider, group, team) in &t.mappings {
            self.execute(
                "INSERT INTO mappings (provider, group_key, team_id) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[provider, group, team],
            )?;
        }
        Ok(())
    }
}
