//! The `memberships` table: who is in which team, from which source, through which group.
//! Reconcile decides the rows (`crate::membership`); this module only reads and writes them.

use rusqlite::{Connection, params};

use crate::domain::TeamId;
use crate::domain::reconcile::{MembershipRow, Source};
use crate::store::error::{Result, StoreError};
use crate::store::memberships::{StoredMembership, TeamMemberRow, TeamMembers};

pub fn detailed(conn: &Connection, user_id: i64) -> Result<Vec<StoredMembership>> {
    let mut stmt = conn.prepare_cached(
        "SELECT team_id, source, via, since, confirmed_at FROM memberships
         WHERE user_id = ?1 ORDER BY team_id, source, via",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|r| {
        let (team, source, via, since, confirmed_at) = r?;
        Ok(StoredMembership {
            row: MembershipRow {
                team: TeamId::parse(&team).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                source: Source::parse(&source)
                    .ok_or_else(|| StoreError::Corrupt(format!("membership source {source}")))?,
                via,
            },
            since,
            confirmed_at,
        })
    })
    .collect()
}

pub fn add(conn: &Connection, user_id: i64, row: &MembershipRow, now: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO memberships (user_id, team_id, source, via, since, confirmed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        user_id,
        row.team.as_str(),
        row.source.as_str(),
        row.via,
        now
    ])?;
    Ok(())
}

pub fn remove(conn: &Connection, user_id: i64, row: &MembershipRow) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM memberships WHERE user_id = ?1 AND team_id = ?2 AND source = ?3 AND via = ?4",
    )?
    .execute(params![
        user_id,
        row.team.as_str(),
        row.source.as_str(),
        row.via
    ])?;
    Ok(())
}

pub fn confirm(conn: &Connection, user_id: i64, row: &MembershipRow, now: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE memberships SET confirmed_at = ?5
         WHERE user_id = ?1 AND team_id = ?2 AND source = ?3 AND via = ?4",
    )?
    .execute(params![
        user_id,
        row.team.as_str(),
        row.source.as_str(),
        row.via,
        now
    ])?;
    Ok(())
}

/// Per team: how many distinct users are members, and the first `limit` memberships.
pub fn team_members(conn: &Connection, limit: usize) -> Result<TeamMembers> {
    let mut out = TeamMembers::new();
    let mut stmt = conn.prepare_cached(
        "SELECT team_id, COUNT(DISTINCT user_id) FROM memberships GROUP BY team_id",
    )?;
    let counts = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for c in counts {
        let (team, n) = c?;
        out.insert(team, (n, Vec::new()));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT u.public_id, COALESCE(u.email, u.provider || ':' || u.subject), m.source, m.via
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.team_id = ?1 ORDER BY 2 COLLATE NOCASE, m.source LIMIT ?2",
    )?;
    for (team, (_, rows)) in out.iter_mut() {
        let members = stmt.query_map(
            params![team, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(TeamMemberRow {
                    public_id: r.get(0)?,
                    label: r.get(1)?,
                    source: r.get(2)?,
                    via: r.get(3)?,
                })
            },
        )?;
        *rows = members.collect::<rusqlite::Result<_>>()?;
    }
    Ok(out)
}
