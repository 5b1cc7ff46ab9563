//! The append-only `audit` table on PostgreSQL (twin of `store/sqlite/audit.rs`; triggers
//! refuse UPDATE and DELETE).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgTx, big, get};
use crate::store::audit::{AuditFilter, AuditRow, Entry, Trigger};
use crate::store::error::Result;
use crate::store::port::{AuditReads, AuditWrites};

const COLUMNS: &str =
    "id, at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail";

fn from_row(r: &Row) -> Result<AuditRow> {
    Ok(AuditRow {
        id: get(r, 0)?,
        at: get(r, 1)?,
        trigger: get(r, 2)?,
        request_id: get(r, 3)?,
        user_id: get(r, 4)?,
        user_label: get(r, 5)?,
        action: get(r, 6)?,
        team: get(r, 7)?,
        source: get(r, 8)?,
        via: get(r, 9)?,
        detail: get(r, 10)?,
    })
}

impl AuditReads for PgTx<'_> {
    fn audit_of_user(&self, user_id: i64) -> Result<Vec<AuditRow>> {
        let sql = format!("SELECT {COLUMNS} FROM audit WHERE user_id = $1 ORDER BY id");
        self.query(&sql, &[&user_id])?
            .iter()
            .map(from_row)
            .collect()
    }

    fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE true");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, value: Box<dyn ToSql + Sync + Send>| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if !f.user_ids.is_empty() || f.user_label.is_some() {
            sql.push_str(" AND (false");
            for id in &f.user_ids {
                arg(&mut sql, " OR user_id = ?", Box::new(*id));
            }
            if let Some(label) = &f.user_label {
                arg(
                    &mut sql,
                    " OR lower(user_label) = lower(?)",
                    Box::new(label.clone()),
                );
            }
            sql.push(')');
        }
        if let Some(team) = &f.team {
            arg(&mut sql, " AND team_id = ?", Box::new(team.clone()));
        }
        if let Some(source) = f.source {
            arg(
                &mut sql,
                " AND source = ?",
                Box::new(source.as_str().to_owned()),
            );
        }
        if let Some(trigger) = &f.trigger {
            arg(&mut sql, " AND trigger = ?", Box::new(trigger.clone()));
        }
        // Stored times are RFC 3339 with a varying number of fractional digits; compare them
        // as instants, with a coarse text bound that keeps the `at` index useful.
        let fmt = |t: OffsetDateTime| {
            t.to_offset(time::UtcOffset::UTC)
                .format(&Rfc3339)
                .unwrap_or_default()
        };
        if let Some(since) = f.since {
            let coarse = since.replace_nanosecond(0).unwrap_or(since) - time::Duration::SECOND;
            arg(&mut sql, " AND at >= ?::text", Box::new(fmt(coarse)));
            arg(
                &mut sql,
                " AND at::timestamptz >= (?::text)::timestamptz",
                Box::new(fmt(since)),
            );
        }
        if let Some(until) = f.until {
            arg(
                &mut sql,
                " AND at::timestamptz <= (?::text)::timestamptz",
                Box::new(fmt(until)),
            );
        }
        arg(
            &mut sql,
            " ORDER BY id DESC LIMIT ?",
            Box::new(big(f.limit)),
        );
        let params: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        self.query_dynamic(&sql, &params)?
            .iter()
            .map(from_row)
            .collect()
    }
}

impl AuditWrites for PgTx<'_> {
    fn record_audit(&self, at: &str, trigger: &Trigger, e: &Entry<'_>) -> Result<()> {
        let detail = match (e.detail, &trigger.detail) {
            (Some(d), _) => Some(d.to_owned()),
            (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        };
        // Nobody reads it back in this transaction: it goes with the next statement.
        self.execute_later(
            "INSERT INTO audit (at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            vec![
                Box::new(at.to_owned()),
                Box::new(trigger.kind.as_str()),
                Box::new(trigger.request_id.clone()),
                Box::new(e.user_id),
                Box::new(e.user_label.map(str::to_owned)),
                Box::new(e.action.to_owned()),
                Box::new(e.team.map(str::to_owned)),
                Box::new(e.source.map(str::to_owned)),
                Box::new(e.via.map(str::to_owned)),
                Box::new(detail),
            ],
        )?;
        Ok(())
    }
}
