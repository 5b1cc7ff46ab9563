//! Browser sessions: the tower-sessions layer (cookie attributes per security case 47), what a
//! signed-in session holds, and the checks every request makes on it: idle and absolute
//! lifetimes, and per-user revocation through the user's session generation.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::config::ServerConfig;
use crate::domain::Clock;
use crate::store::sessions::{AUTH_KEY, DbSessionStore};
use crate::store::users::UserRecord;
use crate::store::{Store, StoreError};

/// How often `last_seen` is written back; between writes a request costs no session write.
const LAST_SEEN_GRANULARITY: i64 = 60;

/// Build the session layer for `server`.
pub fn layer(
    store: Store,
    clock: Clock,
    server: &ServerConfig,
) -> SessionManagerLayer<DbSessionStore> {
    let https = server.is_https();
    let layer = SessionManagerLayer::new(DbSessionStore::new(store, clock))
        .with_name(cookie_name(https, server.cookie_domain.is_some()))
        .with_secure(https)
        .with_http_only(true)
        // Strict would drop the cookie on the IdP -> callback redirect (security case 46).
        .with_same_site(SameSite::Lax)
        .with_path("/")
        // No Max-Age: a browser-session cookie; lifetimes are enforced server-side.
        .with_expiry(Expiry::OnSessionEnd);
    // Shared with the apps' sibling hosts when teamgate has a host of its own (see
    // `server.cookie_domain`); host-only otherwise.
    match &server.cookie_domain {
        Some(domain) => layer.with_domain(domain.clone()),
        None => layer,
    }
}

/// `__Host-` requires Secure, Path=/ and no Domain, so it is used exactly when https and the
/// cookie is host-only; a cookie shared with a parent domain gets `__Secure-` (Secure only).
pub fn cookie_name(https: bool, shared: bool) -> &'static str {
    match (https, shared) {
        (true, false) => "__Host-teamgate",
        (true, true) => "__Secure-teamgate",
        (false, _) => "teamgate",
    }
}

/// What a signed-in session holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSession {
    pub user_id: i64,
    /// The user's session generation at login; a bump revokes this session.
    pub generation: i64,
    pub provider: String,
    /// Unix seconds.
    pub login_at: i64,
    pub last_seen: i64,
    /// CSRF token for state-changing forms (logout, admin).
    pub csrf: String,
    /// The client's address at sign-in (the peer, or the first address a trusted proxy
    /// names), for the admin's list of sessions.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// The browser's User-Agent at sign-in, cut to [`USER_AGENT_MAX`] characters.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The ID token of the login, kept only for providers with `logout = "idp"`: sent back
    /// to the IdP as `id_token_hint` at sign-out. A secret: never logged or shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdTokenHint>,
}

/// Longest User-Agent kept with a session.
pub const USER_AGENT_MAX: usize = 256;

/// An ID token kept for RP-initiated logout: serialised into the stored session, but its
/// `Debug` hides it, so that no log line can carry it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdTokenHint(String);

impl IdTokenHint {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The token; only for the `id_token_hint` parameter of the IdP's end-session URL.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for IdTokenHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenHint(***)")
    }
}

/// Where a sign-in comes from, kept with the session.
#[derive(Debug, Clone, Default)]
pub struct SignInContext {
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub id_token: Option<IdTokenHint>,
}

/// Why a session does not count as signed in.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub auth: AuthSession,
    pub user: UserRecord,
}

/// Start the signed-in state: new session id (security case 48), then the auth record.
pub async fn sign_in(
    session: &Session,
    clock: &Clock,
    user: &UserRecord,
    provider: &str,
    context: SignInContext,
) -> Result<AuthSession, SessionError> {
    session.cycle_id().await?;
    let now = clock.unix();
    let auth = AuthSession {
        user_id: user.id,
        generation: user.session_generation,
        provider: provider.to_owned(),
        login_at: now,
        last_seen: now,
        csrf: crate::domain::ids::random_id(),
        client_ip: context.client_ip,
        user_agent: context
            .user_agent
            .map(|ua| ua.chars().take(USER_AGENT_MAX).collect()),
        id_token: context.id_token,
    };
    session.insert(AUTH_KEY, &auth).await?;
    Ok(auth)
}

/// The signed-in user, or `None` when the session is absent, expired (idle or absolute),
/// revoked, or its user deactivated. An invalid session is flushed.
pub async fn current(
    session: &Session,
    store: &Store,
    clock: &Clock,
    server: &ServerConfig,
) -> Result<Option<SignedIn>, SessionError> {
    let Some(mut auth) = session.get::<AuthSession>(AUTH_KEY).await? else {
        return Ok(None);
    };
    let now = clock.unix();
    let expired = now - auth.last_seen > secs(server.session_idle)
        || now - auth.login_at > secs(server.session_absolute);
    let user_id = auth.user_id;
    let user = if expired {
        None
    } else {
        store.user(user_id).await?
    };
    let Some(user) = user.filter(|u| u.active && u.session_generation == auth.generation) else {
        session.flush().await?;
        return Ok(None);
    };
    if now - auth.last_seen >= LAST_SEEN_GRANULARITY {
        auth.last_seen = now;
        session.insert(AUTH_KEY, &auth).await?;
    }
    Ok(Some(SignedIn { auth, user }))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Constant-time comparison of a submitted CSRF token with the session's.
pub fn csrf_matches(auth: &AuthSession, submitted: &str) -> bool {
    use subtle::ConstantTimeEq;
    !submitted.is_empty() && bool::from(auth.csrf.as_bytes().ct_eq(submitted.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::{AuthSession, IdTokenHint, cookie_name};

    /// The ID token kept for RP-initiated logout is stored, but no `{:?}` of a session (in a
    /// log line or an error) shows it (security case K4).
    #[test]
    fn the_kept_id_token_is_stored_but_never_printed() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let auth = AuthSession {
            user_id: 1,
            generation: 0,
            provider: "entra".into(),
            login_at: 0,
            last_seen: 0,
            csrf: "c".into(),
            client_ip: None,
            user_agent: None,
            id_token: Some(IdTokenHint::new(token.into())),
        };
        assert!(!format!("{auth:?}").contains(token));
        assert!(serde_json::to_string(&auth).unwrap().contains(token));
    }

    /// `__Host-` forbids a Domain attribute, so a cookie shared with a parent domain is
    /// `__Secure-` (security case K2); plain http gets no prefix at all.
    #[test]
    fn the_cookie_prefix_follows_https_and_sharing() {
        assert_eq!(cookie_name(true, false), "__Host-teamgate");
        assert_eq!(cookie_name(true, true), "__Secure-teamgate");
        assert_eq!(cookie_name(false, false), "teamgate");
        assert_eq!(cookie_name(false, true), "teamgate");
    }
}
