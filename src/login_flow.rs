//! The end of a login, after the IdP's answer is verified: settle the user's groups (userinfo,
//! Entra overage through Microsoft Graph, Okta's 100-group cap through its Groups API), check
//! the email domain, then in ONE write transaction create or update the user, refuse
//! deactivated users, reconcile their teams with audit rows, and finally start the session
//! with a new id. Group settling is shared with the refresh re-evaluation ([`crate::oidc::refresh`]).

use serde_json::Value;
use tower_sessions::Session;

use crate::app::AppState;
use crate::config::{Config, GroupFailure, ProviderConfig, ProviderKind};
use crate::http::request_id::RequestId;
use crate::oidc::claims::{self, GroupsClaim};
use crate::oidc::login::VerifiedLogin;
use crate::oidc::refresh::Grant;
use crate::oidc::{LoginError, ProviderRuntime, graph, okta, userinfo};
use crate::secret::Secret;
use crate::store::audit::Trigger;
use crate::store::users::{self, LoginProfile};
use crate::store::{StoreError, memberships};

const REFUSED_INACTIVE: &str = "inactive";
const REFUSED_NO_TEAMS: &str = "no teams";

/// Who the groups are being settled for.
pub struct GroupsSubject<'a> {
    /// The stored subject (`sub`, Entra `oid` or `tid/oid`): the cache key.
    pub subject: &'a str,
    /// The ID token's `sub`: userinfo must carry the same (OIDC Core §5.3.2) and it is the Okta
    /// user id.
    pub sub: &'a str,
    pub access_token: &'a Secret,
}

/// Turn what the token said about groups into the groups to store: `Some(list)`, or `None`
/// when membership is unknown right now and `on_group_failure = "keep"` (the user's current
/// teams are then kept: never read as "no groups", IDP-QUIRKS E6). With `"refuse"` an unknown
/// membership is [`LoginError::GroupsUnavailable`]. `use_cache` is false when re-reading on
/// purpose (refresh).
pub async fn settle_groups(
    state: &AppState,
    config: &Config,
    runtime: &ProviderRuntime,
    provider: &ProviderConfig,
    claim: GroupsClaim,
    who: &GroupsSubject<'_>,
    use_cache: bool,
) -> Result<Option<Vec<String>>, LoginError> {
    // O2: Okta custom servers release groups only through userinfo by default; others opt in.
    let claim = match claim {
        GroupsClaim::Absent
            if provider.groups_from_userinfo || provider.kind == ProviderKind::Okta =>
        {
            let info = userinfo::fetch(runtime, who.access_token.expose(), who.sub).await?;
            claims::groups(&info, provider)?
        }
        other => other,
    };
    let cache = &state.providers.groups_cache;
    match claim {
        GroupsClaim::Absent => Ok(Some(Vec::new())),
        GroupsClaim::Present(list)
            if provider.kind == ProviderKind::Okta && list.len() == okta::CLAIM_LIMIT =>
        {
            // O3: Okta caps a groups claim at 100 values; exactly 100 may be a truncated list.
            let Some(api_token) = &provider.okta_api_token else {
                tracing::warn!(
                    provider = %provider.id,
                    "the groups claim lists exactly 100 groups, Okta's cap: the list may be truncated; set okta_api_token_env to complete it through the Okta Groups API"
                );
                return Ok(Some(list));
            };
            if use_cache && let Some(groups) = cache.get(provider.id.as_str(), who.subject) {
                return Ok(Some(groups));
            }
            match okta::user_groups(
                runtime.http(),
                &provider.issuer,
                api_token.expose(),
                who.sub,
                provider.group_key,
            )
            .await
            {
                Ok(all) => {
                    let all = filter_prefix(provider, all);
                    tracing::info!(provider = %provider.id, groups = all.len(), "possibly truncated groups claim completed through the Okta Groups API");
                    cache.put(
                        provider.id.as_str(),
                        who.subject,
                        all.clone(),
                        provider.groups_cache,
                    );
                    Ok(Some(all))
                }
                Err(e) => unknown(
                    provider,
                    &format!("the groups claim may be truncated at 100 and {e}"),
                ),
            }
        }
        GroupsClaim::Present(list) => Ok(Some(list)),
        GroupsClaim::Overage if provider.kind != ProviderKind::Entra => unknown(
            provider,
            "the token carries a group overage marker, which only Entra providers resolve",
        ),
        GroupsClaim::Overage => {
            if use_cache && let Some(groups) = cache.get(provider.id.as_str(), who.subject) {
                return Ok(Some(groups));
            }
            let mapped = config.policy().mappings.groups_of(&provider.id);
            let resolved = graph::resolve(
                runtime.http(),
                &provider.graph_url,
                who.access_token.expose(),
                &mapped,
            )
            .await;
            let label = match &resolved {
                Ok(_) => "ok",
                Err(graph::GraphError::Refused { .. }) => "refused",
                Err(graph::GraphError::Timeout(_)) => "timeout",
                Err(_) => "error",
            };
            crate::metrics::inc_graph_call(provider.id.as_str(), label);
            match resolved {
                Ok((groups, method)) => {
                    tracing::info!(provider = %provider.id, ?method, groups = groups.len(), "group overage resolved through Microsoft Graph");
                    cache.put(
                        provider.id.as_str(),
                        who.subject,
                        groups.clone(),
                        provider.groups_cache,
                    );
                    Ok(Some(groups))
                }
                Err(e) => unknown(provider, &format!("group overage: {e}")),
            }
        }
    }
}

/// Membership is unknown: keep the current teams (logged) or refuse, as configured.
fn unknown(provider: &ProviderConfig, why: &str) -> Result<Option<Vec<String>>, LoginError> {
    match provider.on_group_failure {
        GroupFailure::Keep => {
            tracing::warn!(provider = %provider.id, reason = %why, "group membership unknown; keeping the user's current teams (on_group_failure = \"keep\")");
            Ok(None)
        }
        GroupFailure::Refuse => Err(LoginError::GroupsUnavailable(why.to_owned())),
    }
}

fn filter_prefix(provider: &ProviderConfig, groups: Vec<String>) -> Vec<String> {
    match provider.groups_prefix.as_deref() {
        None => groups,
        Some(p) => groups.into_iter().filter(|g| g.starts_with(p)).collect(),
    }
}

/// Finish a verified login; returns where to send the browser.
pub async fn complete(
    state: &AppState,
    config: &Config,
    provider: &ProviderConfig,
    login: VerifiedLogin,
    session: &Session,
    rid: &RequestId,
) -> Result<String, LoginError> {
    let runtime = state.providers.runtime(provider);
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
        state,
        config,
        &runtime,
        provider,
        login.groups.clone(),
        &who,
        true,
    )
    .await?;
    claims::check_email_domain(provider, login.email.as_deref(), login.email_verified)?;
    let profile = LoginProfile {
        provider: login.provider.clone(),
        subject: login.subject.clone(),
        email: login.email.clone(),
        email_verified: login.email_verified,
        name: login.name.clone(),
        claims_groups,
    };
    let trigger = Trigger::new(
        "login",
        Some(rid.0.clone()),
        Some(format!("login via {}", provider.id)),
    );
    let (user, plan) = write_login(state, profile, trigger).await?;
    crate::session::sign_in(session, &user, provider.id.as_str())
        .await
        .map_err(|e| LoginError::Internal(e.to_string()))?;
    if let (Some(refresh_token), Some(interval)) = (login.refresh_token, provider.refresh_interval)
    {
        state.providers.grants.insert(Grant::new(
            user.id,
            provider.id.to_string(),
            login.issuer.clone(),
            sub,
            login.subject.clone(),
            refresh_token,
            interval,
            config.server.session_absolute,
        ));
        crate::oidc::refresh::ensure_running(state);
    }
    tracing::info!(
        user = %user.label(),
        provider = %provider.id,
        added = plan.add.len(),
        removed = plan.remove.len(),
        "signed in"
    );
    Ok(login.return_to)
}

/// The login transaction: upsert the user, refuse an inactive one (re-checked inside the
/// transaction that precedes the session, SECURITY.md 88), reconcile with audit rows, and
/// refuse a user left with no team when the config says so. The config is the one in force
/// when the job runs, not when the login began (see [`crate::config::LiveConfig`]): a reload
/// that removed the provider or narrowed its email domains meanwhile refuses the login.
pub async fn write_login(
    state: &AppState,
    profile: LoginProfile,
    trigger: Trigger,
) -> Result<(users::UserRecord, crate::domain::reconcile::Plan), LoginError> {
    let live = state.config.clone();
    let result = state
        .store
        .write(move |conn| {
            let config = live.get();
            let Some(provider) = config.provider(&profile.provider) else {
                return Ok(Err(LoginError::UnknownProvider(profile.provider.clone())));
            };
            if let Err(refused) = claims::check_email_domain(
                provider,
                profile.email.as_deref(),
                profile.email_verified,
            ) {
                return Ok(Err(refused));
            }
            let user = users::upsert_from_login(conn, &profile, &crate::store::now())?;
            if !user.active {
                return Err(StoreError::Refused(REFUSED_INACTIVE.into()));
            }
            let plan = memberships::reconcile_record(conn, &user, &config, &trigger)?;
            if config.defaults.refuse_without_teams
                && memberships::current(conn, user.id)?.is_empty()
            {
                return Err(StoreError::Refused(REFUSED_NO_TEAMS.into()));
            }
            Ok(Ok((user, plan)))
        })
        .await;
    match result {
        Ok(outcome) => outcome,
        Err(StoreError::Refused(why)) if why == REFUSED_INACTIVE => {
            Err(LoginError::AccountDisabled)
        }
        Err(StoreError::Refused(_)) => Err(LoginError::NoTeams),
        Err(e) => Err(LoginError::Internal(format!("login transaction: {e}"))),
    }
}
