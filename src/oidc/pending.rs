//! Logins in flight: what `/login` must remember until `/callback` (state, nonce, PKCE
//! verifier, issuer, return URL), kept server-side in the pre-login session. Several tabs may
//! log in at once; the list is capped (oldest evicted) and entries expire (security cases 32-33).

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::domain::Clock;
use crate::web::session::SessionError;

const KEY: &str = "pending_logins";
/// Most logins one browser may have in flight.
pub const MAX_PENDING: usize = 8;
/// Seconds a started login stays valid: as long as the store keeps a pre-login session.
pub const PENDING_TTL: i64 = crate::store::sessions::PRE_LOGIN_TTL;
/// Most bytes the list may take in the session (each return URL may be 2 KiB): the oldest
/// logins go first beyond it, so a session row stays small whatever `rd` a client sends.
pub const MAX_PENDING_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub provider: String,
    /// The issuer the login was started at (mix-up defence, RFC 9207 / BCP §4.4.2).
    pub issuer: String,
    pub return_to: String,
    pub created: i64,
}

/// Remember a started login, evicting expired entries and the oldest beyond the cap.
pub async fn push(
    session: &Session,
    login: PendingLogin,
    clock: &Clock,
) -> Result<(), SessionError> {
    let mut list: Vec<PendingLogin> = session.get(KEY).await?.unwrap_or_default();
    let now = clock.unix();
    list.retain(|p| now - p.created <= PENDING_TTL);
    list.push(login);
    if list.len() > MAX_PENDING {
        let excess = list.len() - MAX_PENDING;
        list.drain(..excess);
    }
    while list.len() > 1 && encoded_len(&list) > MAX_PENDING_BYTES {
        list.remove(0);
    }
    session.insert(KEY, list).await?;
    Ok(())
}

fn encoded_len(list: &[PendingLogin]) -> usize {
    serde_json::to_string(list).map_or(usize::MAX, |s| s.len())
}

/// Take (and so consume: state is single-use) the pending login with `state`, if it is there
/// and not expired.
pub async fn take(
    session: &Session,
    state: &str,
    clock: &Clock,
) -> Result<Option<PendingLogin>, SessionError> {
    let mut list: Vec<PendingLogin> = session.get(KEY).await?.unwrap_or_default();
    let pos = list
        .iter()
        .position(|p| bool::from(p.state.as_bytes().ct_eq(state.as_bytes())));
    let Some(pos) = pos else {
        return Ok(None);
    };
    let login = list.remove(pos);
    if list.is_empty() {
        session.remove_value(KEY).await?;
    } else {
        session.insert(KEY, list).await?;
    }
    // Saved now, so a replay of this callback finds nothing even if the rest fails.
    session.save().await?;
    Ok((clock.unix() - login.created <= PENDING_TTL).then_some(login))
}
