//! A user's browser sessions as an administrator sees and ends them: on the admin user page
//! (`/admin/users/{id}`, one form per session and one for all) and with
//! `teamgate sessions list|revoke USER`. A session is named by its public handle
//! ([`crate::store::sessions::public_handle`]), never by its id or stored hash. Ending one
//! deletes its row; ending all bumps the user's session generation too. Both write an audit
//! row naming who did it.

use std::fmt::Write as _;

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::Clock;
use crate::domain::clock::timestamp;
use crate::store::audit::{Entry, Trigger};
use crate::store::sessions::StoredSession;
use crate::store::users::UserRecord;
use crate::store::{ReadTx, StoreError, WriteTx};

/// One session, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub handle: String,
    /// RFC 3339 (UTC), or `None` for a session stored before teamgate recorded it.
    pub created: Option<String>,
    pub last_seen: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub expires: Option<String>,
}

fn stamp(unix: Option<i64>) -> Option<String> {
    unix.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .map(timestamp)
}

impl From<&StoredSession> for SessionView {
    fn from(s: &StoredSession) -> Self {
        Self {
            handle: s.handle(),
            created: stamp(s.details.created_at),
            last_seen: stamp(s.details.last_seen_at),
            client_ip: s.details.client_ip.clone(),
            user_agent: s.details.user_agent.clone(),
            expires: stamp(Some(s.expires_at)),
        }
    }
}

/// The live sessions of `user`, the most recently used first.
pub fn list(tx: &dyn ReadTx, user: &UserRecord, now: i64) -> Result<Vec<SessionView>, StoreError> {
    Ok(tx
        .user_sessions(user.id, now)?
        .iter()
        .map(SessionView::from)
        .collect())
}

/// End the session of `user` whose handle is `handle`; false when there is none (already
/// ended, expired, or another user's).
pub fn end_one(
    tx: &dyn WriteTx,
    clock: &Clock,
    trigger: &Trigger,
    user: &UserRecord,
    handle: &str,
) -> Result<bool, StoreError> {
    let Some(session) = tx
        .user_sessions(user.id, clock.unix())?
        .into_iter()
        .find(|s| s.handle() == handle)
    else {
        return Ok(false);
    };
    tx.delete_session(&session.id_hash)?;
    tx.record_audit(
        &clock.stamp(),
        trigger,
        &Entry {
            user_id: Some(user.id),
            user_label: Some(&user.label()),
            action: "user.session_ended",
            detail: Some(&format!("session {handle}")),
            ..Entry::default()
        },
    )?;
    Ok(true)
}

/// End every session of `user` (the generation bump also stops a session whose row
/// survived elsewhere, such as a copy of the database).
pub fn end_all(
    tx: &dyn WriteTx,
    clock: &Clock,
    trigger: &Trigger,
    user: &UserRecord,
) -> Result<(), StoreError> {
    tx.revoke_user_sessions(user.id)?;
    tx.record_audit(
        &clock.stamp(),
        trigger,
        &Entry {
            user_id: Some(user.id),
            user_label: Some(&user.label()),
            action: "user.sign_out_everywhere",
            ..Entry::default()
        },
    )?;
    Ok(())
}

/// `teamgate sessions list`'s text.
pub fn render_text(user: &UserRecord, sessions: &[SessionView]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}): {} live session(s)",
        user.label(),
        user.public_id,
        sessions.len()
    );
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    for s in sessions {
        let _ = writeln!(
            out,
            "  {}  signed in {}  last seen {}  from {}  expires {}",
            s.handle,
            or_unknown(&s.created),
            or_unknown(&s.last_seen),
            or_unknown(&s.client_ip),
            or_unknown(&s.expires),
        );
        let _ = writeln!(out, "      {}", or_unknown(&s.user_agent));
    }
    out
}
