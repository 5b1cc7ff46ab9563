//! Group re-evaluation with refresh tokens (IdP quirk E7): a provider with
//! `refresh_interval_seconds` asks for `offline_access`; after a login the refresh token is
//! kept here and, every interval, redeemed (RFC 6749 §6) to re-read the user's groups from the
//! refreshed ID token, userinfo or Microsoft Graph (a refreshed Entra token lacks `groups` too).
//! The result is reconciled like a login, so removal from a group removes the team without a
//! new sign-in.
//!
//! Where grants live: with `server.secret_key_*` set, in the database, the refresh token sealed
//! with AES-256-GCM ([`super::sealed`]), so every replica can re-evaluate any user and the loss
//! of the replica that signed the user in loses nothing; each due grant is claimed by one
//! replica at a time (a claim expires after [`CLAIM`], when another takes over). Without a
//! secret key (one process on SQLite), in memory only: a restart forgets them, and
//! re-evaluation of a user resumes at their next sign-in. Never in a log ([`Secret`] has no
//! `Display` and a redacted `Debug`). A grant lives no longer than the session's absolute
//! lifetime, and is dropped when the IdP refuses it or when a refreshed ID token names another
//! `iss` or `sub` (OIDC Core §12.2, security case 26). A refusal with `invalid_grant` (signed
//! out at the IdP, disabled, token revoked) also ends the user's sessions on the spot (revoked
//! through their session generation, audited with trigger `refresh`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openidconnect::core::CoreClient;
use openidconnect::{ClientId, OAuth2TokenResponse, RefreshToken};

use super::groups::{GroupsSubject, settle_groups};
use super::sealed::Sealer;
use super::{LoginError, SignIn};
use crate::domain::secret::Secret;
use crate::idp::claims::{self, GroupsClaim};
use crate::idp::provider::error_chain;
use crate::idp::verify::{self, NonceCheck};
use crate::membership::reconcile::reconcile_record;
use crate::store::StoreError;
use crate::store::WriteMode;
use crate::store::audit::{Entry, Trigger, TriggerKind};
use crate::store::refresh_grants::StoredRefreshGrant;
use crate::store::users::LoginProfile;

/// Most grants kept; beyond it the one closest to its end is dropped.
pub const MAX_GRANTS: usize = 50_000;
/// How often the background task looks for due grants.
const TICK: Duration = Duration::from_millis(500);
/// How long a replica's claim on a stored grant lasts (then another replica may take it).
const CLAIM: Duration = Duration::from_secs(60);
/// Most stored grants claimed per tick.
const CLAIM_BATCH: usize = 64;

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
    /// This login's id (stored grants: a newer login's grant is never overwritten by it).
    login_id: String,
    /// The grant's end, unix milliseconds (stored grants).
    until_ms: i64,
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
            login_id: crate::domain::ids::random_id(),
            until_ms: unix_ms() + ms(lifetime),
        }
    }
}

fn unix_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The grants of signed-in users, one per user (a new login replaces the old grant).
#[derive(Default)]
pub struct RefreshGrants {
    by_user: Mutex<HashMap<i64, RefreshGrant>>,
    running: AtomicBool,
    /// Set: the grants live in the database, their tokens sealed with this.
    sealer: Option<Sealer>,
}

impl RefreshGrants {
    /// Grants kept in the database, sealed with `sealer`.
    pub fn stored(sealer: Sealer) -> Self {
        Self {
            sealer: Some(sealer),
            ..Self::default()
        }
    }

    /// Whether grants live in the database.
    pub fn in_database(&self) -> bool {
        self.sealer.is_some()
    }

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
    /// Keep `grant` for re-evaluation: in memory, or sealed in the database.
    pub async fn keep_grant(&self, grant: RefreshGrant) {
        let Some(sealer) = &self.grants.sealer else {
            self.grants.insert(grant);
            return;
        };
        let token = match sealer.seal(grant.user_id, &grant.provider, grant.refresh_token.expose())
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "refresh grant not kept");
                return;
            }
        };
        let stored = StoredRefreshGrant {
            user_id: grant.user_id,
            provider: grant.provider.clone(),
            issuer: grant.issuer.clone(),
            sub: grant.sub.clone(),
            subject: grant.subject.clone(),
            token,
            login_id: grant.login_id.clone(),
            interval_ms: ms(grant.interval),
            next_at: unix_ms() + ms(grant.interval),
            until_at: grant.until_ms,
        };
        if let Err(e) = self
            .store
            .write_with(WriteMode::Simple, move |tx| tx.put_refresh_grant(&stored))
            .await
        {
            tracing::error!(error = %e, user_id = grant.user_id, "refresh grant not stored; groups are re-read at the next sign-in");
        }
    }

    /// Claim the stored grants due now, their tokens opened (a token that does not open is
    /// dropped: another secret key, or a damaged row).
    async fn claim_due(&self) -> Vec<RefreshGrant> {
        let Some(sealer) = &self.grants.sealer else {
            return self.grants.take_due();
        };
        let now = unix_ms();
        let claimed = self
            .store
            .write_with(WriteMode::Simple, move |tx| {
                tx.claim_refresh_grants(now, now + ms(CLAIM), CLAIM_BATCH)
            })
            .await;
        let claimed = match claimed {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim due refresh grants");
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(claimed.len());
        for g in claimed {
            match sealer.open(g.user_id, &g.provider, &g.token) {
                Ok(refresh_token) => out.push(RefreshGrant {
                    user_id: g.user_id,
                    provider: g.provider,
                    issuer: g.issuer,
                    sub: g.sub,
                    subject: g.subject,
                    refresh_token,
                    interval: Duration::from_millis(u64::try_from(g.interval_ms).unwrap_or(0)),
                    next: Instant::now(),
                    until: Instant::now(),
                    login_id: g.login_id,
                    until_ms: g.until_at,
                }),
                Err(e) => {
                    tracing::warn!(user_id = g.user_id, error = %e, "refresh grant dropped");
                    let (user_id, login_id) = (g.user_id, g.login_id);
                    let _ = self
                        .store
                        .write_with(WriteMode::Simple, move |tx| {
                            tx.drop_refresh_grant(user_id, &login_id)
                        })
                        .await;
                }
            }
        }
        out
    }

    /// Put a used grant back (the IdP may have rotated its token).
    async fn return_grant(&self, mut grant: RefreshGrant, rotated: Option<Secret>) {
        let Some(sealer) = &self.grants.sealer else {
            if let Some(rotated) = rotated {
                grant.refresh_token = rotated;
            }
            self.grants.put_back(grant);
            return;
        };
        let token = match rotated {
            Some(t) => match sealer.seal(grant.user_id, &grant.provider, t.expose()) {
                Ok(sealed) => Some(sealed),
                Err(e) => {
                    tracing::error!(error = %e, "cannot seal the rotated refresh token");
                    return self.forget_grant(&grant).await;
                }
            },
            None => None,
        };
        let next = unix_ms() + ms(grant.interval);
        let (user_id, login_id) = (grant.user_id, grant.login_id.clone());
        if let Err(e) = self
            .store
            .write_with(WriteMode::Simple, move |tx| {
                tx.release_refresh_grant(user_id, &login_id, token.as_deref(), next)
            })
            .await
        {
            tracing::warn!(error = %e, user_id, "cannot put the refresh grant back; another replica takes it over when its claim ends");
        }
    }

    async fn forget_grant(&self, grant: &RefreshGrant) {
        if self.grants.sealer.is_none() {
            return;
        }
        let (user_id, login_id) = (grant.user_id, grant.login_id.clone());
        if let Err(e) = self
            .store
            .write_with(WriteMode::Simple, move |tx| {
                tx.drop_refresh_grant(user_id, &login_id)
            })
            .await
        {
            tracing::warn!(error = %e, user_id, "cannot delete the refresh grant");
        }
    }

    /// Start the re-evaluation task unless it runs already. Called after each login that
    /// kept a grant, and at start when grants live in the database (kept by earlier runs or
    /// other replicas).
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
                for grant in signin.claim_due().await {
                    match signin.reevaluate(&grant).await {
                        Ok(rotated) => signin.return_grant(grant, rotated).await,
                        Err(GiveUp(why)) => {
                            tracing::warn!(user_id = grant.user_id, provider = %grant.provider, reason = %why, "refresh grant dropped; groups are re-read at the next sign-in");
                            signin.forget_grant(&grant).await;
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
