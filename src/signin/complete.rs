//! The end of a login, after the IdP's answer is verified: settle the user's groups, check
//! the email domain, then in ONE write transaction create or update the user, refuse
//! deactivated users, reconcile their teams with audit rows, and refuse a user left with no
//! team when the config says so. Starting the browser session is the caller's (the OIDC
//! adapter's) last step.

use serde_json::Value;

use super::groups::{GroupsSubject, settle_groups};
use super::refresh::RefreshGrant;
use super::{LoginError, SignIn, VerifiedLogin};
use crate::config::{Config, ProviderConfig};
use crate::domain::reconcile::Plan;
use crate::domain::scim::resource;
use crate::domain::tenant;
use crate::membership::profile::describe_change;
use crate::membership::reconcile::{current, reconcile_record};
use crate::store::WriteTx;
use crate::store::audit::{Entry, Trigger, TriggerKind};
use crate::store::scim::{Realm, UserRow, fold};
use crate::store::users::{LoginProfile, Profile, UserRecord};

/// A login the database accepted.
#[derive(Debug)]
pub struct Accepted {
    pub user: UserRecord,
    pub plan: Plan,
    /// Where to send the browser.
    pub return_to: String,
}

impl SignIn {
    /// Finish a verified login: groups, domain check, the login transaction, and the refresh
    /// grant when the provider re-evaluates groups.
    pub async fn complete(
        &self,
        config: &Config,
        provider: &ProviderConfig,
        login: VerifiedLogin,
        request_id: &str,
    ) -> Result<Accepted, LoginError> {
        let runtime = self.providers.runtime(provider);
        let sub = login
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let who = GroupsSubject {
            subject: &login.subject,
            sub: &sub,
            access_token: &login.access_token,
        };
        let claims_groups = settle_groups(
            &self.providers,
            config,
            &runtime,
            provider,
            login.groups.clone(),
            &who,
            true,
        )
        .await?;
        check_email_domain(provider, login.email.as_deref(), login.email_verified)?;
        let profile = LoginProfile {
            provider: login.provider.clone(),
            subject: login.subject.clone(),
            email: login.email.clone(),
            email_verified: login.email_verified,
            name: login.name.clone(),
            claims_groups,
        };
        let trigger = Trigger::new(
            TriggerKind::Login,
            Some(request_id.to_owned()),
            Some(format!("login via {}", provider.id)),
        );
        let (user, plan) = self.write_login(profile, trigger).await?;
        if let (Some(refresh_token), Some(interval)) =
            (login.refresh_token, provider.refresh_interval)
        {
            self.keep_grant(RefreshGrant::new(
                user.id,
                provider.id.to_string(),
                login.issuer.clone(),
                sub,
                login.subject.clone(),
                refresh_token,
                interval,
                config.server.session_absolute,
            ))
            .await;
            self.ensure_refreshing();
        }
        tracing::info!(
            user = %user.label(),
            provider = %provider.id,
            added = plan.add.len(),
            removed = plan.remove.len(),
            "signed in"
        );
        Ok(Accepted {
            user,
            plan,
            return_to: login.return_to,
        })
    }

    /// The login transaction: upsert the user, refuse an inactive one (re-checked inside the
    /// transaction that precedes the session, security case 88), reconcile with audit rows,
    /// and refuse a user left with no team when the config says so. The config is the one in
    /// force when the job runs, not when the login began (see [`crate::config::LiveConfig`]):
    /// a reload that removed the provider or narrowed its email domains meanwhile refuses it.
    pub async fn write_login(
        &self,
        profile: LoginProfile,
        trigger: Trigger,
    ) -> Result<(UserRecord, Plan), LoginError> {
        let live = self.config.clone();
        let clock = self.clock.clone();
        self.store
            .write(move |tx| {
                let config = live.get();
                let provider = config
                    .provider(&profile.provider)
                    .ok_or_else(|| LoginError::UnknownProvider(profile.provider.clone()))?;
                check_email_domain(provider, profile.email.as_deref(), profile.email_verified)?;
                let now = clock.stamp();
                let mut before = tx.user_by_subject(&profile.provider, &profile.subject)?;
                if before.is_none() && provider.match_by_email {
                    before = link_by_email(tx, provider, &profile, &trigger, &now)?;
                }
                let user = tx.upsert_login_user(&profile, &now)?;
                if let Some(before) = &before {
                    audit_profile_change(tx, before, &user, &trigger, &now)?;
                }
                if !user.active {
                    return Err(LoginError::AccountDisabled);
                }
                let plan = reconcile_record(tx, &user, &config, &trigger, &now)?;
                if config.defaults.refuse_without_teams && current(tx, user.id)?.is_empty() {
                    return Err(LoginError::NoTeams);
                }
                Ok((user, plan))
            })
            .await
    }
}

/// `match_by_email`: a first sign-in (no identity has this subject yet) whose VERIFIED email
/// equals the userName or the primary email of exactly one SCIM user of the same provider
/// (and, for a multi-tenant provider, of the same tenant) that has no id link yet (no
/// `externalId`, so it is linked to its `scim:<id>` placeholder) takes that user's identity:
/// the placeholder is re-keyed to the login subject, once, audited as
/// `identity.link_by_email`. Never with an unverified email, never across tenants, never when
/// two SCIM users could be meant. Returns the identity taken over.
fn link_by_email(
    tx: &dyn WriteTx,
    provider: &ProviderConfig,
    profile: &LoginProfile,
    trigger: &Trigger,
    now: &str,
) -> Result<Option<UserRecord>, LoginError> {
    let (Some(email), true) = (profile.email.as_deref(), profile.email_verified) else {
        return Ok(None);
    };
    let tenant = if provider.is_multi_tenant() {
        match tenant::of_subject(&profile.subject) {
            Some(t) => Some(t),
            None => return Ok(None),
        }
    } else {
        None
    };
    let realm = Realm::new(provider.id.as_str(), tenant);
    let folded = fold(email);
    let mut candidates: Vec<UserRow> = tx
        .scim_users_by_email(&realm, email)?
        .into_iter()
        .filter(|row| {
            let f = resource::user_fields(&row.doc);
            fold(&f.user_name) == folded || f.email.is_some_and(|e| fold(&e) == folded)
        })
        .collect();
    if candidates.len() != 1 {
        if candidates.len() > 1 {
            tracing::warn!(provider = %provider.id, "match_by_email: several SCIM users have this email; not linking");
        }
        return Ok(None);
    }
    let Some(row) = candidates.pop() else {
        return Ok(None);
    };
    let Some(placeholder) = tx.user(row.user_id)? else {
        return Ok(None);
    };
    if !placeholder.subject.starts_with("scim:") {
        // Already linked to a login identity (by email before, or by an id): linked once only.
        return Ok(None);
    }
    tx.rekey_user(row.user_id, &profile.subject, now)?;
    let detail = format!(
        "match_by_email: the first sign-in of subject {} with the verified email {email} is linked to SCIM user {} (userName {}) of provider {}{}",
        profile.subject,
        row.scim_id,
        resource::user_fields(&row.doc).user_name,
        provider.id,
        tenant.map(|t| format!(", tenant {t}")).unwrap_or_default(),
    );
    tx.record_audit(
        now,
        trigger,
        &Entry {
            user_id: Some(row.user_id),
            user_label: Some(email),
            action: "identity.link_by_email",
            detail: Some(&detail),
            ..Entry::default()
        },
    )?;
    Ok(tx.user(row.user_id)?)
}

/// A login sets the profile from the IdP's claims (the newest source wins over an earlier
/// SCIM push, and the other way round): audit the change when there is one.
fn audit_profile_change(
    tx: &dyn WriteTx,
    before: &UserRecord,
    after: &UserRecord,
    trigger: &Trigger,
    now: &str,
) -> Result<(), LoginError> {
    let Some(detail) = describe_change(
        &Profile::from(before),
        &Profile::from(after),
        "the sign-in",
        "verified by the IdP",
        "not verified",
    ) else {
        return Ok(());
    };
    tx.record_audit(
        now,
        trigger,
        &Entry {
            user_id: Some(after.id),
            user_label: Some(&after.label()),
            action: "user.profile",
            detail: Some(&detail),
            ..Entry::default()
        },
    )?;
    Ok(())
}

/// Check the allow-list of email domains; only a verified email can pass.
pub fn check_email_domain(
    provider: &ProviderConfig,
    email: Option<&str>,
    verified: bool,
) -> Result<(), LoginError> {
    if provider.allowed_email_domains.is_empty() {
        return Ok(());
    }
    let Some(email) = email else {
        return Err(LoginError::DomainNotAllowed("no email claim".into()));
    };
    if !verified {
        return Err(LoginError::DomainNotAllowed(format!(
            "email {email} is not verified"
        )));
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if provider.allowed_email_domains.iter().any(|d| d == domain) {
        Ok(())
    } else {
        Err(LoginError::DomainNotAllowed(format!(
            "domain {domain} of {email}"
        )))
    }
}
