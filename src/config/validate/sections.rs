//! The smaller sections: `[[demo_user]]`, `[forward_auth]` (header names, assertion audience
//! and lifetime) and `[admin]` (the role that opens `/admin`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use url::Url;

use super::Validator;
use crate::config::raw::{self, S};
use crate::config::{
    AdminConfig, DemoUser, ForwardAuthConfig, HEADER_KEYS, ProviderConfig, ProviderKind,
    normalise_email,
};
use crate::domain::{Role, Scope};

impl Validator<'_> {
    pub(super) fn demo_users(
        &mut self,
        raws: &[S<raw::RawDemoUser>],
        providers: &[ProviderConfig],
    ) -> Vec<DemoUser> {
        let mut out: Vec<DemoUser> = Vec::new();
        for u in raws {
            let r = u.get_ref();
            match normalise_email(r.email.get_ref()) {
                Some(email) if out.iter().any(|o| o.email == email) => {
                    self.err(&r.email, format!("demo user {email} is listed twice"));
                }
                Some(email) => out.push(DemoUser {
                    email,
                    name: r.name.clone(),
                    groups: r.groups.clone(),
                }),
                None => self.err(
                    &r.email,
                    format!(
                        "demo_user: \"{}\" is not an email address",
                        r.email.get_ref()
                    ),
                ),
            }
        }
        if providers.iter().any(|p| p.kind == ProviderKind::Demo) && out.is_empty() {
            self.push(
                0,
                "a demo provider is configured but no [[demo_user]]; add at least one".into(),
            );
        }
        out
    }

    pub(super) fn forward_auth(
        &mut self,
        f: &raw::RawForwardAuth,
        public_url: Option<&Url>,
    ) -> ForwardAuthConfig {
        let mut headers: BTreeMap<String, String> = HEADER_KEYS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (key, value) in &f.headers {
            if !headers.contains_key(key) {
                self.err(value, format!("forward_auth.headers: \"{key}\" is unknown; use user, email, email_verified, name, teams, roles or assertion"));
            } else if http::HeaderName::from_bytes(value.get_ref().as_bytes()).is_err() {
                self.err(
                    value,
                    format!(
                        "forward_auth.headers.{key}: \"{}\" is not a valid header name",
                        value.get_ref()
                    ),
                );
            } else {
                headers.insert(key.clone(), value.get_ref().clone());
            }
        }
        let ttl = match &f.assertion_ttl_seconds {
            None => 120,
            Some(v) => match u64::try_from(*v.get_ref()) {
                Ok(n) if (10..=300).contains(&n) => n,
                _ => {
                    self.err(v, "forward_auth.assertion_ttl_seconds must be 10 to 300 (RFC 8725: keep assertions short-lived)".into());
                    120
                }
            },
        };
        ForwardAuthConfig {
            headers,
            assertion_audience: f
                .assertion_audience
                .clone()
                .or_else(|| public_url.map(|u| u.as_str().trim_end_matches('/').to_owned()))
                .unwrap_or_default(),
            assertion_ttl: Duration::from_secs(ttl),
        }
    }

    pub(super) fn admin(
        &mut self,
        a: &raw::RawAdmin,
        known_roles: &BTreeSet<Role>,
    ) -> Option<AdminConfig> {
        let role = match &a.role {
            None => Role::parse("owner").ok(),
            Some(r) => {
                let role = self.parse_with(r, "admin.role", Role::parse);
                if role
                    .as_ref()
                    .is_some_and(|role| !known_roles.contains(role))
                {
                    self.err(
                        r,
                        format!("admin.role \"{}\" is not a known role", r.get_ref()),
                    );
                }
                role
            }
        };
        let scope = match &a.scope {
            None => None,
            Some(s) => Some(self.parse_with(s, "admin.scope", Scope::parse)?),
        };
        Some(AdminConfig { role: role?, scope })
    }
}
