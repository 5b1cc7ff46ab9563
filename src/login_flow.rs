//! The end of a login, after the IdP's answer is verified: settle the user's groups (userinfo,
//! overage), check the email domain, then in ONE write transaction create or update the user,
//! refuse deactivated users, reconcile their teams with audit rows, and finally start the
//! session with a new id.

use serde_json::Value;
use tower_sessions::Session;

use crate::app::AppState;
use crate::config::{Config, GroupFailure, ProviderConfig};
use crate::http::request_id::RequestId;
use crate::oidc::claims::{self, GroupsClaim};
use crate::oidc::login::VerifiedLogin;
use crate::oidc::{LoginError, userinfo};
use crate::store::audit::Trigger;
use crate::store::users::{self, LoginProfile};
use crate::store::{StoreError, memberships};

const REFUSED_INACTIVE: &str = "inactive";
const REFUSED_NO_TEAMS: &str = "no teams";

/// Finish a verified login; returns where to send the browser.
pub async fn complete(
    state: &AppState,
    config: &Config,
    provider: &ProviderConfig,
    mut login: VerifiedLogin,
    session: &Session,
    rid: &RequestId,
) -> Result<String, LoginError> {
    if provider.groups_from_userinfo && login.groups == GroupsClaim::Absent {
        let runtime = state.providers.runtime(provider);
        let sub = login.claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        let info = userinfo::fetch(&runtime, &login.access_token, &sub).await?;
        login.groups = claims::groups(&info, provider)?;
    }
    let claims_groups = match &login.groups {
        GroupsClaim::Present(list) => Some(list.clone()),
        GroupsClaim::Absent => Some(Vec::new()),
        GroupsClaim::Overage => match provider.on_group_failure {
            // Membership is unknown: keep the stored teams, never read it as "no groups".
            GroupFailure::Keep => {
                tracing::warn!(provider = %provider.id, "group overage could not be resolved; keeping the user's current teams");
                None
            }
            GroupFailure::Refuse => {
                return Err(LoginError::GroupsUnavailable("group overage not resolved".into()));
            }
        },
    };
    claims::check_email_domain(provider, login.email.as_deref(), login.email_verified)?;
    let profile = LoginProfile {
        provider: login.provider.clone(),
        subject: login.subject.clone(),
        email: login.email.clone(),
        email_verified: login.email_verified,
        name: login.name.clone(),
        claims_groups,
    };
    let txn_config = config.clone();
    let refuse_without_teams = config.defaults.refuse_without_teams;
    let trigger = Trigger::new("login", Some(rid.0.clone()), Some(format!("login via {}", provider.id)));
    let result = state
        .store
        .write(move |conn| {
            let user = users::upsert_from_login(conn, &profile, &crate::store::now())?;
            // Re-checked inside the transaction that precedes the session (SECURITY.md 88).
            if !user.active {
                return Err(StoreError::Refused(REFUSED_INACTIVE.into()));
            }
            let plan = memberships::reconcile_record(conn, &user, &txn_config, &trigger)?;
            if refuse_without_teams && memberships::current(conn, user.id)?.is_empty() {
                return Err(StoreError::Refused(REFUSED_NO_TEAMS.into()));
            }
            Ok((user, plan))
        })
        .await;
    let (user, plan) = match result {
        Ok(v) => v,
        Err(StoreError::Refused(why)) if why == REFUSED_INACTIVE => return Err(LoginError::AccountDisabled),
        Err(StoreError::Refused(_)) => return Err(LoginError::NoTeams),
        Err(e) => return Err(LoginError::Internal(format!("login transaction: {e}"))),
    };
    crate::session::sign_in(session, &user, provider.id.as_str())
        .await
        .map_err(|e| LoginError::Internal(e.to_string()))?;
    tracing::info!(
        user = %user.label(),
        provider = %provider.id,
        added = plan.add.len(),
        removed = plan.remove.len(),
        "signed in"
    );
    Ok(login.return_to)
}
