//! The append-only `audit` table (triggers refuse UPDATE and DELETE).

use rusqlite::types::ToSql;
use rusqlite::{Connection, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::SqliteTx;
use crate::store::audit::{AuditFilter, AuditRow, Entry, Trigger};
use crate::store::error::Result;
use crate::store::port::{AuditReads, AuditWrites};

pub fn record(conn: &Connection, at: &str, trigger: &Trigger, e: &Entry<'_>) -> Result<()> {
    let detail = match (e.detail, &trigger.detail) {
        (Some(d), _) => Some(d.to_owned()),
        (None, Some(t)) => Some(t.clone()),
        (None, None) => None,
    };
    conn.prepare_cached(
        "INSERT INTO audit (at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        at,
        trigger.kind.as_str(),
        trigger.request_id,
        e.user_id,
        e.user_label,
        e.action,
        e.team,
        e.source,
        e.via,
        detail
    ])?;
    Ok(())
}

/// The audit rows about one user, oldest first.
pub fn for_user(conn: &Connection, user_id: i64) -> Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail
         FROM audit WHERE user_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([user_id], row_to_audit)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn row_to_audit(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        at: r.get(1)?,
        trigger: r.get(2)?,
        request_id: r.get(3)?,
        user_id: r.get(4)?,
        user_label: r.get(5)?,
        action: r.get(6)?,
        team: r.get(7)?,
        source: r.get(8)?,
        via: r.get(9)?,
        detail: r.get(10)?,
    })
}

/// Audit rows matching `f`, newest first.
pub fn audit(conn: &Connection, f: &AuditFilter) -> Result<Vec<AuditRow>> {
    let mut sql = String::from(
        "SELECT id, at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail
         FROM audit WHERE 1 = 1",
    );
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: Box<dyn ToSql>| {
        args.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if !f.user_ids.is_empty() || f.user_label.is_some() {
        sql.push_str(" AND (0 = 1");
        for id in &f.user_ids {
            arg(&mut sql, " OR user_id = ?", Box::new(*id));
        }
        if let Some(label) = &f.user_label {
            arg(
                &mut sql,
                " OR user_label = ? COLLATE NOCASE",
                Box::new(label.clone()),
            );
        }
        sql.push(')');
    }
    if let Some(team) = &f.team {
        arg(&mut sql, " AND team_id = ?", Box::new(team.clone()));
    }
    if let Some(source) = f.source {
        arg(&mut sql, " AND source = ?", Box::new(source.as_str()));
    }
    if let Some(trigger) = &f.trigger {
        arg(&mut sql, " AND trigger = ?", Box::new(trigger.clone()));
    }
    // Stored times are RFC 3339 with a varying number of fractional digits, so strings do not
    // sort exactly; julianday compares instants. The coarse string bound keeps the `at` index
    // useful (a second earlier cannot exclude a row the exact test keeps).
    let fmt = |t: OffsetDateTime| {
        t.to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_default()
    };
    if let Some(since) = f.since {
        let coarse = since.replace_nanosecond(0).unwrap_or(since) - time::Duration::SECOND;
        arg(&mut sql, " AND at >= ?", Box::new(fmt(coarse)));
        arg(
            &mut sql,
            " AND julianday(at) >= julianday(?)",
            Box::new(fmt(since)),
        );
    }
    if let Some(until) = f.until {
        arg(
            &mut sql,
            " AND julianday(at) <= julianday(?)",
            Box::new(fmt(until)),
        );
    }
    arg(
        &mut sql,
        " ORDER BY id DESC LIMIT ?",
        Box::new(i64::try_from(f.limit).unwrap_or(i64::MAX)),
    );
    let mut stmt = conn.prepare(&sql)?;
    let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
    let rows = stmt.query_map(params.as_slice(), row_to_audit)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl AuditReads for SqliteTx<'_> {
    fn audit_of_user(&self, user_id: i64) -> Result<Vec<AuditRow>> {
        for_user(self.conn, user_id)
    }

    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        audit(self.conn, filter)
    }
}

impl AuditWrites for SqliteTx<'_> {
    fn record_audit(&self, at: &str, trigger: &Trigger, entry: &Entry<'_>) -> Result<()> {
        record(self.conn, at, trigger, entry)
    }
}
