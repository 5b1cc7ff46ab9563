//! `[[provider]]`: ids, kinds, issuers (one provider per issuer), client secrets from the
//! environment or a file beside the config, and each kind's own rules.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use super::{SecretKeys, Validator, default_display_name, is_loopback_host};

use crate::config::raw::{RawProvider, S};
use crate::config::{
    GroupFailure, GroupKey, LogoutMode, ProviderConfig, ProviderKind, ServerConfig,
};
use crate::domain::ProviderId;
use crate::domain::secret::Secret;

/// What the checks of one `[[provider]]` start from: its parsed id and kind, and its line.
pub(super) struct Header {
    id: ProviderId,
    kind: ProviderKind,
    line: usize,
}

impl Validator<'_> {
    pub(super) fn providers(
        &mut self,
        raws: &[S<RawProvider>],
        server: Option<&ServerConfig>,
    ) -> Vec<ProviderConfig> {
        let mut out: Vec<ProviderConfig> = Vec::new();
        let mut issuers: BTreeMap<String, String> = BTreeMap::new();
        for sp in raws {
            let line = self.line_of(&sp.span());
            let p = sp.get_ref();
            let Some(id) = self.parse_with(&p.id, "provider.id", ProviderId::parse) else {
                continue;
            };
            if out.iter().any(|o| o.id == id) {
                self.err(
                    &p.id,
                    format!(
                        "provider id \"{id}\" is used twice; give each [[provider]] its own id"
                    ),
                );
                continue;
            }
            let kind = match p.kind.get_ref().as_str() {
                "entra" => ProviderKind::Entra,
                "okta" => ProviderKind::Okta,
                "oidc" => ProviderKind::Oidc,
                "demo" => ProviderKind::Demo,
                other => {
                    self.err(
                        &p.kind,
                        format!(
                            "provider kind \"{other}\" is unknown; use entra, okta, oidc or demo"
                        ),
                    );
                    continue;
                }
            };
            if let Some(p) = self.provider(p, Header { id, kind, line }, server) {
                if let Some(other) = issuers.insert(p.issuer.clone(), p.id.to_string()) {
                    // RFC 9207 §4: the issuer identifies the IdP, so two providers may not share it.
                    self.push(line, format!("providers \"{other}\" and \"{}\" have the same issuer {}; each provider needs its own issuer", p.id, p.issuer));
                }
                out.push(p);
            }
        }
        if raws.is_empty() {
            self.push(
                0,
                "no [[provider]] is configured; add at least one (see config/example.toml)".into(),
            );
        }
        out
    }

    /// The client secret: required of every provider but the demo (whose secret is made at
    /// start).
    pub(super) fn secret(
        &mut self,
        p: &RawProvider,
        id: &ProviderId,
        line: usize,
    ) -> Option<Secret> {
        if p.client_secret_env.is_none() && p.client_secret_file.is_none() {
            self.push(line, format!("provider \"{id}\": no client secret; set client_secret_env = \"VAR\" or client_secret_file = \"path\" (secrets never go in this file)"));
            return None;
        }
        self.secret_from(SecretKeys {
            env: p.client_secret_env.as_ref(),
            file: p.client_secret_file.as_ref(),
            env_key: "client_secret_env",
            file_key: "client_secret_file",
            owner: format!("provider \"{id}\": "),
            what: "the client secret",
        })
    }

    pub(super) fn provider(
        &mut self,
        p: &RawProvider,
        header: Header,
        server: Option<&ServerConfig>,
    ) -> Option<ProviderConfig> {
        let Header { id, kind, line } = header;
        let public_url = server.map(|s| &s.public_url);
        let before = self.errors.len();
        let (issuer, client_id, client_secret) = if kind == ProviderKind::Demo {
            if server.is_some_and(|s| !s.demo) {
                self.push(line, format!("provider \"{id}\" is a demo IdP, which signs in anyone; set demo = true under [server] to allow it, or remove the provider"));
            }
            for (key, present) in [
                ("issuer", p.issuer.is_some()),
                ("client_id", p.client_id.is_some()),
                ("client_secret_env", p.client_secret_env.is_some()),
                ("client_secret_file", p.client_secret_file.is_some()),
            ] {
                if present {
                    self.push(
                        line,
                        format!("provider \"{id}\": a demo provider takes no {key}; remove it"),
                    );
                }
            }
            let issuer = public_url
                .map(|u| format!("{}/demo-idp", u.as_str().trim_end_matches('/')))
                .unwrap_or_default();
            (issuer, format!("teamgate-{id}"), None)
        } else {
            let issuer = match &p.issuer {
                None => {
                    self.push(line, format!("provider \"{id}\": issuer is missing; write the IdP's issuer URL (e.g. https://login.microsoftonline.com/<tenant-id>/v2.0)"));
                    None
                }
                Some(i) => self.parse_with(i, "provider.issuer", |s| {
                    let url = Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))?;
                    if url.scheme() != "https" && !is_loopback_host(&url) {
                        return Err(format!("\"{s}\" must be https"));
                    }
                    // Compared as a plain string with the discovery document (RFC 9207 §2.4).
                    Ok(s.to_owned())
                }),
            };
            let client_id = match &p.client_id {
                Some(c) if !c.get_ref().trim().is_empty() => Some(c.get_ref().clone()),
                Some(c) => {
                    self.err(c, format!("provider \"{id}\": client_id is empty"));
                    None
                }
                None => {
                    self.push(line, format!("provider \"{id}\": client_id is missing; copy it from the app registration"));
                    None
                }
            };
            let secret = self.secret(p, &id, line);
            (
                issuer.unwrap_or_default(),
                client_id.unwrap_or_default(),
                secret,
            )
        };
        let group_key = match p.group_key.as_ref().map(|g| (g, g.get_ref().as_str())) {
            None => match kind {
                ProviderKind::Okta => GroupKey::Name,
                _ => GroupKey::Id,
            },
            Some((_, "id")) => GroupKey::Id,
            Some((_, "name")) => GroupKey::Name,
            Some((g, other)) => {
                self.err(g, format!("provider \"{id}\": group_key \"{other}\" is unknown; use \"id\" or \"name\""));
                GroupKey::Id
            }
        };
        let groups_claim = p
            .groups_claim
            .as_ref()
            .map(|c| c.get_ref().clone())
            .unwrap_or_else(|| "groups".into());
        if (groups_claim.is_empty() || groups_claim.split('.').any(str::is_empty))
            && let Some(c) = &p.groups_claim
        {
            self.err(c, format!("provider \"{id}\": groups_claim \"{groups_claim}\" is not a claim name or dotted path"));
        }
        let graph_url = match &p.graph_url {
            None => Url::parse("https://graph.microsoft.com").ok(),
            Some(g) => self.parse_with(g, "provider.graph_url", |s| {
                Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))
            }),
        };
        let on_group_failure = match p
            .on_group_failure
            .as_ref()
            .map(|g| (g, g.get_ref().as_str()))
        {
            None | Some((_, "keep")) => GroupFailure::Keep,
            Some((_, "refuse")) => GroupFailure::Refuse,
            Some((g, other)) => {
                self.err(g, format!("provider \"{id}\": on_group_failure \"{other}\" is unknown; use \"keep\" or \"refuse\""));
                GroupFailure::Keep
            }
        };
        let groups_cache = match &p.groups_cache_seconds {
            None => Some(300),
            Some(v) => self.positive(v, "provider.groups_cache_seconds"),
        };
        let refresh_interval = match &p.refresh_interval_seconds {
            None => None,
            Some(v) => self
                .positive(v, "provider.refresh_interval_seconds")
                .map(Duration::from_secs),
        };
        let okta_api_token = self.secret_from(SecretKeys {
            env: p.okta_api_token_env.as_ref(),
            file: p.okta_api_token_file.as_ref(),
            env_key: "okta_api_token_env",
            file_key: "okta_api_token_file",
            owner: format!("provider \"{id}\": "),
            what: "the Okta API token",
        });
        let mut domains = Vec::new();
        for d in &p.allowed_email_domains {
            let dom = d.get_ref().trim().trim_start_matches('@').to_lowercase();
            if dom.is_empty() || dom.contains(['/', ' ', '@']) {
                self.err(
                    d,
                    format!(
                        "provider \"{id}\": \"{}\" is not a domain; write e.g. \"example.com\"",
                        d.get_ref()
                    ),
                );
            } else {
                domains.push(dom);
            }
        }
        let allowed_tenants: Vec<String> = p
            .allowed_tenants
            .iter()
            .map(|t| t.get_ref().to_lowercase())
            .collect();
        // Entra multi-tenant (IdP quirk E9): tokens of any tenant verify against the templated
        // issuer, so the tenants to admit must be listed, as GUIDs.
        let multi_tenant = kind == ProviderKind::Entra
            && p.tenant.as_ref().is_some_and(|t| {
                matches!(
                    t.get_ref().to_lowercase().as_str(),
                    "organizations" | "common"
                )
            });
        if multi_tenant && allowed_tenants.is_empty() {
            self.push(line, format!("provider \"{id}\": a multi-tenant Entra provider (tenant = \"organizations\" or \"common\") needs allowed_tenants = [\"<tenant-id>\", ...]"));
        }
        if multi_tenant
            && !issuer.split('/').any(|s| {
                s.eq_ignore_ascii_case("organizations") || s.eq_ignore_ascii_case("common")
            })
        {
            self.push(line, format!("provider \"{id}\": with tenant = \"organizations\" or \"common\" the issuer must be the matching endpoint, e.g. https://login.microsoftonline.com/organizations/v2.0"));
        }
        for t in &p.allowed_tenants {
            if !crate::domain::ids::is_guid(t.get_ref()) {
                self.err(t, format!("provider \"{id}\": allowed_tenants: \"{}\" is not a tenant id (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47)", t.get_ref()));
            } else if !multi_tenant {
                self.err(t, format!("provider \"{id}\": allowed_tenants applies only to kind = \"entra\" with tenant = \"organizations\" or \"common\""));
            }
        }
        let logout = match p.logout.as_ref().map(|l| (l, l.get_ref().as_str())) {
            None | Some((_, "local")) => LogoutMode::Local,
            Some((_, "idp")) => LogoutMode::Idp,
            Some((l, other)) => {
                self.err(l, format!("provider \"{id}\": logout \"{other}\" is unknown; use \"local\" (teamgate's session only) or \"idp\" (the identity provider's session too)"));
                LogoutMode::Local
            }
        };
        if self.errors.len() > before {
            return None;
        }
        Some(ProviderConfig {
            logout,
            display_name: p
                .display_name
                .clone()
                .unwrap_or_else(|| default_display_name(kind, &id)),
            id,
            kind,
            issuer,
            client_id,
            client_secret,
            groups_claim,
            groups_claim_field: p.groups_claim_field.as_ref().map(|f| f.get_ref().clone()),
            groups_prefix: p.groups_prefix.clone(),
            group_key,
            groups_from_userinfo: p.groups_from_userinfo,
            extra_scopes: p.extra_scopes.clone(),
            allowed_email_domains: domains,
            graph_url: graph_url?,
            tenant: p.tenant.as_ref().map(|t| t.get_ref().clone()),
            allowed_tenants,
            on_group_failure,
            groups_cache: Duration::from_secs(groups_cache?),
            refresh_interval,
            okta_api_token,
            match_by_email: p.match_by_email,
            scim_enabled: p.scim.enabled,
            line,
        })
    }
}
