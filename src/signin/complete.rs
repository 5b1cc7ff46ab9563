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
use crate::membership::reconcile::{current, reconcile_record};
use crate::store::audit::{Trigger, TriggerKind};
use crate::store::users::{LoginProfile, UserRecord};

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
                let user = tx.upsert_login_user(&profile, &now)?;
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
