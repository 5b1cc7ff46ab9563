//! Settling a user's groups: turn what the ID token said into the groups to store, reading
//! further where the token cannot say it all: userinfo (Okta, IdP quirk O2), Microsoft Graph
//! for an Entra overage (E4, E5), the Okta Groups API for a claim at Okta's cap of 100 (O3).
//! Shared by the login and the refresh re-evaluation.

use crate::config::{Config, GroupFailure, ProviderConfig, ProviderKind};
use crate::domain::secret::Secret;
use crate::domain::tenant;
use crate::idp::claims::{self, GroupsClaim};
use crate::idp::{ProviderRuntime, Providers, graph, okta, userinfo};

use super::LoginError;

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
/// teams are then kept: never read as "no groups", IdP quirk E6). With `"refuse"` an unknown
/// membership is [`LoginError::GroupsUnavailable`]. `use_cache` is false when re-reading on
/// purpose (refresh). The groups are stored as the IdP names them; for a multi-tenant
/// provider they are the signing tenant's (Microsoft signs a token for one tenant), and
/// reconcile reads them qualified by it (`membership::reconcile::user_input`, security case
/// J1). Graph, asked about an overage, is asked about that tenant's mapped groups only.
pub async fn settle_groups(
    providers: &Providers,
    config: &Config,
    runtime: &ProviderRuntime,
    provider: &ProviderConfig,
    claim: GroupsClaim,
    who: &GroupsSubject<'_>,
    use_cache: bool,
) -> Result<Option<Vec<String>>, LoginError> {
    let tenant = provider
        .is_multi_tenant()
        .then(|| tenant::of_subject(who.subject))
        .flatten();
    settle(
        providers, config, runtime, provider, claim, who, use_cache, tenant,
    )
    .await
}

/// [`settle_groups`], with the tenant of a multi-tenant provider's user.
#[allow(clippy::too_many_arguments)]
async fn settle(
    providers: &Providers,
    config: &Config,
    runtime: &ProviderRuntime,
    provider: &ProviderConfig,
    claim: GroupsClaim,
    who: &GroupsSubject<'_>,
    use_cache: bool,
    tenant: Option<&str>,
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
    let cache = &providers.groups_cache;
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
            // Graph answers for the user's own tenant: ask about that tenant's mapped groups.
            let mapped = tenant::keys_of(tenant, &config.policy().mappings.groups_of(&provider.id));
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
