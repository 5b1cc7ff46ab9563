//! Group re-evaluation with refresh tokens (IdP quirk E7): a provider with
//! `refresh_interval_seconds` asks for `offline_access`; after a login the refresh token is
//! kept here and, every interval, redeemed (RFC 6749 §6) to re-read the user's groups from the
//! refreshed ID token, userinfo or Microsoft Graph (a refreshed Entra token lacks `groups` too).
//! The result is reconciled like a login, so removal from a group removes the team without a
//! new sign-in.
//!
//! Decision: refresh tokens are kept in memory only, never written to the database or a log
//! ([`Secret`] has no `Display` and a redacted `Debug`). A restart forgets them; re-evaluation
//! of a user then resumes at their next sign-in. A grant lives no longer than the session's
//! absolute lifetime, and is dropped when the IdP refuses it or when a refreshed ID token names
//! another `iss` or `sub` (OIDC Core §12.2, security case 26). A refusal with `invalid_grant`
//! (signed out at the IdP, disabled, token revoked) also ends the user's sessions on the spot
//! (revoked through their session generation, audited with trigger `refresh`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openidconnect::core::CoreClient;
use openidconnect::{ClientId, OAuth2TokenResponse, RefreshToken};

use super::groups::{GroupsSubject, settle_groups};
use super::{LoginError, SignIn};
use crate::domain::secret::Secret;
use crate::idp::claims::{self, GroupsClaim};
use crate::idp::provider::error_chain;
use crate::idp::verify::{self, NonceCheck};
use crate::membership::reconcile::reconcile_record;
use crate::store::StoreError;
use crate::store::audit::{Entry, Trigger, TriggerKind};
use crate::store::users::LoginProfile;

/// Most grants kept; beyond it the one closest to its end is dropped.
pub const MAX_GRANTS: usize = 50_000;
/// How often the background task looks for due grants.
const TICK: Duration = Duration::from_millis(500);

/// One user's refresh token and when to use it next.
pub struct RefreshGrant {
    pub user_id: i64,
    pub provider: String,
    /// The ID token's `iss` and `sub` at login: a refreshed ID token must repeat them.
    pub issuer: String,
    pub sub: String,
    /// The stored subject (groups cache key).
    pub subject: String,
    refresh_token: Secret,
    interval: Duration,
    next: Instant,
    until: Instant,
}

impl RefreshGrant {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user_id: i64,
        provider: String,
        issuer: String,
        sub: String,
        subject: String,
        refresh_token: Secret,
        interval: Duration,
        lifetime: Duration,
    ) -> Self {
        let now = Instant::now();
        Self {
            user_id,
            provider,
            issuer,
            sub,
            subject,
            refresh_token,
            interval,
            next: now + interval,
            until: now + lifetime,
        }
    }
}

/// The grants of signed-in users, one per user (a new login replaces the old grant).
#[derive(Default)]
pub struct RefreshGrants {
    by_user: Mutex<HashMap<i64, RefreshGrant>>,
    running: AtomicBool,
}

impl RefreshGrants {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, RefreshGrant>> {
        match self.by_user.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn insert(&self, grant: RefreshGrant) {
        let mut map = self.lock();
        if map.len() >= MAX_GRANTS
            && !map.contains_key(&grant.user_id)
            && let Some(first) = map.values().min_by_key(|g| g.until).map(|g| g.user_id)
        {
            map.remove(&first);
        }
        map.insert(grant.user_id, grant);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take the grants due now (they are put back after use unless dropped).
    fn take_due(&self) -> Vec<RefreshGrant> {
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, g| g.until > now);
        let due: Vec<i64> = map
            .values()
            .filter(|g| g.next <= now)
            .map(|g| g.user_id)
            .collect();
        due.into_iter().filter_map(|id| map.remove(&id)).collect()
    }

    /// Put a used grant back, unless a newer login replaced it meanwhile.
    fn put_back(&self, mut grant: RefreshGrant) {
        grant.next = Instant::now() + grant.interval;
        self.lock().entry(grant.user_id).or_insert(grant);
    }
}

impl SignIn {
    /// Start the re-evaluation task unless it runs already. Called after each login that
    /// stored a grant.
    pub fn ensure_refreshing(&self) {
        if self.grants.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let signin = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                for grant in signin.grants.take_due() {
                    match signin.reevaluate(&grant).await {
                        Ok(Some(rotated)) => {
                            let mut grant = grant;
                            grant.refresh_token = rotated;
                            signin.grants.put_back(grant);
                        }
                        Ok(None) => signin.grants.put_back(grant),
                        Err(GiveUp(why)) => {
                            tracing::warn!(user_id = grant.user_id, provider = %grant.provider, reason = %why, "refresh grant dropped; groups are re-read at the next sign-in");
                        }
                    }
                }
            }
        });
    }
}

/// Why a grant is given up.
struct GiveUp(String);

impl SignIn {
    /// The IdP answered `invalid_grant` to a refresh: end every session of the user (a session
    /// generation bump: every cookie and cached `/auth` grant of theirs stops working) and
    /// audit it, in one transaction. A failure is logged; the grant is dropped either way.
    async fn end_sessions_refused(&self, grant: &RefreshGrant, provider: &str) {
        let user_id = grant.user_id;
        let clock = self.clock.clone();
        let trigger = Trigger::new(
            TriggerKind::Refresh,
            None,
            Some(format!(
                "{provider} refused the refresh token (invalid_grant)"
            )),
        );
        let result = self
            .store
            .write(move |tx| {
                let Some(user) = tx.user(user_id)? else {
                    return Ok::<_, StoreError>(false);
                };
                tx.revoke_user_sessions(user_id)?;
                let label = user.label();
                tx.record_audit(
                    &clock.stamp(),
                    &trigger,
                    &Entry {
                        user_id: Some(user_id),
                        user_label: Some(&label),
                        action: SESSION_REVOKED,
                        detail: Some("the identity provider refused the refresh token"),
                        ..Entry::default()
                    },
                )?;
                Ok(true)
            })
            .await;
        match result {
            Ok(true) => tracing::warn!(
                user_id,
                provider,
                "the identity provider refused the refresh token (invalid_grant); the user's sessions were ended"
            ),
            Ok(false) => {}
            Err(e) => tracing::error!(
                user_id,
                provider,
                error = %e,
                "the identity provider refused the refresh token, but the user's sessions could not be ended"
            ),
        }
    }
}

/// The audit action of sessions ended because the IdP refused a refresh.
pub const SESSION_REVOKED: &str = "session.revoke";

impl SignIn {
    /// Redeem the grant, re-read the groups and reconcile. `Ok(Some(token))`: the IdP rotated the
    /// refresh token. Transient failures keep the grant (retried next interval) and the teams.
    async fn reevaluate(&self, grant: &RefreshGrant) -> Result<Option<Secret>, GiveUp> {
        let state = self;
        let config = state.config.get();
        let Some(provider) = config.provider(&grant.provider) else {
            return Err(GiveUp("the provider is no longer configured".into()));
        };
        let runtime = state.providers.runtime(provider);
        let transient = |e: LoginError| {
            tracing::warn!(user_id = grant.user_id, provider = %provider.id, error = %e, "group re-evaluation failed; will retry");
            Ok(None)
        };
        let metadata = match runtime.metadata().await {
            Ok(m) => m,
            Err(e) => return transient(e.into()),
        };
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(provider.client_id.clone()),
            self.client_secret(provider),
        );
        let refresh_token = RefreshToken::new(grant.refresh_token.expose().to_owned());
        let request = match client.exchange_refresh_token(&refresh_token) {
            Ok(r) => r,
            Err(e) => return Err(GiveUp(format!("no token endpoint: {e}"))),
        };
        let http = |req| runtime.http().call(req);
        let token = match request.request_async(&http).await {
            Ok(t) => t,
            Err(openidconnect::RequestTokenError::ServerResponse(e)) => {
                // `invalid_grant` (RFC 6749 §5.2): the IdP no longer vouches for this user's
                // grant (disabled, signed out there, tokens revoked). Their sessions end now,
                // /auth included, rather than living on until the next sign-in.
                if *e.error() == openidconnect::core::CoreErrorResponseType::InvalidGrant {
                    self.end_sessions_refused(grant, provider.id.as_str()).await;
                }
                return Err(GiveUp(format!(
                    "the IdP refused the refresh token: {}",
                    e.error()
                )));
            }
            Err(e) => return transient(LoginError::IdpUnavailable(error_chain(&e))),
        };
        let access_token = Secret::new(token.access_token().secret().clone());
        let groups_claim = match token.extra_fields().id_token() {
            Some(id_token) => {
                let verified = verify::id_token(
                    &config,
                    &runtime,
                    &metadata,
                    provider,
                    id_token,
                    NonceCheck::Refresh,
                    Some(token.access_token()),
                )
                .await
                .map_err(|e| {
                    GiveUp(format!(
                        "refreshed ID token rejected: {}",
                        LoginError::from(e)
                    ))
                })?;
                let sub = verified
                    .claims
                    .get("sub")
                    .and_then(serde_json::Value::as_str);
                if verified.issuer != grant.issuer || sub != Some(grant.sub.as_str()) {
                    return Err(GiveUp(
                        "the refreshed ID token names another iss or sub".into(),
                    ));
                }
                claims::groups(&verified.claims, provider).map_err(|e| GiveUp(e.to_string()))?
            }
            // No new ID token: Entra's groups come from Graph, others' from userinfo.
            None if provider.kind == crate::config::ProviderKind::Entra => GroupsClaim::Overage,
            None => GroupsClaim::Absent,
        };
        let who = GroupsSubject {
            subject: &grant.subject,
            sub: &grant.sub,
            access_token: &access_token,
        };
        let groups = match settle_groups(
            &state.providers,
            &config,
            &runtime,
            provider,
            groups_claim,
            &who,
            false,
        )
        .await
        {
            Ok(g) => g,
            Err(e) => return transient(e),
        };
        if let Some(groups) = groups {
            let user_id = grant.user_id;
            let live = state.config.clone();
            let clock = self.clock.clone();
            let trigger = Trigger::new(
                TriggerKind::Refresh,
                None,
                Some(format!("group re-evaluation via {}", provider.id)),
            );
            let result = state
                .store
                .write(move |tx| {
                    let user = tx.user(user_id)?.ok_or(StoreError::NotFound)?;
                    let profile = LoginProfile {
                        provider: user.provider.clone(),
                        subject: user.subject.clone(),
                        email: user.email.clone(),
                        email_verified: user.email_verified,
                        name: user.name.clone(),
                        claims_groups: Some(groups.clone()),
                    };
                    let now = clock.stamp();
                    let user = tx.upsert_login_user(&profile, &now)?;
                    // The config in force now, not when the refresh began (LiveConfig).
                    reconcile_record(tx, &user, &live.get(), &trigger, &now)
                })
                .await;
            match result {
                Ok(plan) if !plan.is_empty() => tracing::info!(
                    user_id,
                    provider = %provider.id,
                    added = plan.add.len(),
                    removed = plan.remove.len(),
                    "groups re-evaluated with the refresh token"
                ),
                Ok(_) => {}
                Err(StoreError::NotFound) => {
                    return Err(GiveUp("the user no longer exists".into()));
                }
                Err(e) => return transient(LoginError::Internal(e.to_string())),
            }
        }
        Ok(token
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone())))
    }
}
