//! Authorization requests waiting for a login: when an application sends a browser without a
//! teamgate session (or asks for a fresh login), the request is kept in the pre-login session
//! under a random id and the browser goes through teamgate's own login, whose return URL names
//! that id. Kept server-side, so the request need not fit in a return URL and cannot be
//! changed on the way; capped and expiring like the logins in flight of `crate::oidc::pending`.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::domain::Clock;
use crate::web::session::SessionError;

const KEY: &str = "provider_pending";
/// Most authorization requests one browser may have waiting.
const MAX_PENDING: usize = 8;
/// Seconds a waiting request stays valid (the login's own limit).
const PENDING_TTL: i64 = 600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub id: String,
    /// The authorization request's parameters, form-encoded, as received.
    pub query: String,
    /// Unix seconds: a login after this satisfies `prompt=login` and `max_age`.
    pub created: i64,
}

/// Keep `query` and return the id to resume it by.
pub async fn push(session: &Session, query: String, clock: &Clock) -> Result<String, SessionError> {
    let mut list: Vec<PendingAuthorization> = session.get(KEY).await?.unwrap_or_default();
    let now = clock.unix();
    list.retain(|p| now - p.created <= PENDING_TTL);
    let id = crate::domain::ids::random_id();
    list.push(PendingAuthorization {
        id: id.clone(),
        query,
        created: now,
    });
    if list.len() > MAX_PENDING {
        let excess = list.len() - MAX_PENDING;
        list.drain(..excess);
    }
    session.insert(KEY, list).await?;
    Ok(id)
}

/// Take (once) the waiting request `id`, if it is there and not expired.
pub async fn take(
    session: &Session,
    id: &str,
    clock: &Clock,
) -> Result<Option<PendingAuthorization>, SessionError> {
    let mut list: Vec<PendingAuthorization> = session.get(KEY).await?.unwrap_or_default();
    let Some(pos) = list
        .iter()
        .position(|p| bool::from(p.id.as_bytes().ct_eq(id.as_bytes())))
    else {
        return Ok(None);
    };
    let pending = list.remove(pos);
    if list.is_empty() {
        session.remove_value(KEY).await?;
    } else {
        session.insert(KEY, list).await?;
    }
    Ok((clock.unix() - pending.created <= PENDING_TTL).then_some(pending))
}
