//! Reading identity and groups from verified ID-token (or userinfo) claims: the groups claim
//! at a configured dotted path, in every shape IdPs send (security case 29), Entra's overage
//! marker (IdP quirk E4), and the trusted email.

use serde_json::{Map, Value};

use super::error::IdpError;
use crate::config::{ProviderConfig, ProviderKind};

/// What the token says about groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupsClaim {
    /// The claim is not there at all (and no overage marker): the user has no groups.
    Absent,
    /// Entra overage: too many groups to list; they must be resolved elsewhere, never read as
    /// "no groups".
    Overage,
    /// The group keys listed, after the prefix filter, deduplicated, in order of first appearance.
    Present(Vec<String>),
}

/// Find the groups claim of `provider` in `claims`.
pub fn groups(
    claims: &Map<String, Value>,
    provider: &ProviderConfig,
) -> Result<GroupsClaim, IdpError> {
    let mut path = provider.groups_claim.split('.');
    let first = path.next().unwrap_or_default();
    let mut value = claims.get(first);
    for part in path {
        value = value.and_then(|v| v.get(part));
    }
    let Some(value) = value else {
        let overage = claims
            .get("_claim_names")
            .and_then(|n| n.get(first))
            .is_some()
            || claims
                .get("hasgroups")
                .is_some_and(|h| h == &Value::Bool(true) || h == "true");
        return Ok(if overage {
            GroupsClaim::Overage
        } else {
            GroupsClaim::Absent
        });
    };
    let field = provider.groups_claim_field.as_deref();
    let one = |v: &Value| -> Result<String, IdpError> {
        match (v, field) {
            (Value::String(s), _) => Ok(s.clone()),
            (Value::Object(o), Some(f)) => match o.get(f) {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(IdpError::MalformedGroups(format!(
                    "a group object has no string field {f:?}"
                ))),
            },
            (other, _) => Err(IdpError::MalformedGroups(format!(
                "group values must be strings, got {}",
                json_kind(other)
            ))),
        }
    };
    let list: Vec<String> = match value {
        // DEX singularGroupResponseAsString: one group sent as a plain string.
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(one).collect::<Result<_, _>>()?,
        Value::Null => Vec::new(),
        other => {
            return Err(IdpError::MalformedGroups(format!(
                "the groups claim must be an array or a string, got {}",
                json_kind(other)
            )));
        }
    };
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for g in list {
        let keep = provider
            .groups_prefix
            .as_deref()
            .is_none_or(|p| g.starts_with(p));
        if keep && !g.trim().is_empty() && !out.contains(&g) {
            out.push(g);
        }
    }
    Ok(GroupsClaim::Present(out))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The email and whether it may be trusted: only when `email_verified` is true (a boolean, or
/// the string "true" some IdPs send), or for Entra, which never sends `email_verified`, when
/// the optional `xms_edov` claim says the email's domain is verified by its owner (the nOAuth
/// flaw, IdP quirk E10). An unverified email is kept for display only.
pub fn email(provider: &ProviderConfig, claims: &Map<String, Value>) -> (Option<String>, bool) {
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .map(|e| e.trim().to_lowercase())
        .filter(|e| e.contains('@'));
    let truthy = |v: Option<&Value>| match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true") || s == "1",
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    };
    let verified = match provider.kind {
        ProviderKind::Entra => {
            truthy(claims.get("xms_edov")) || truthy(claims.get("email_verified"))
        }
        _ => truthy(claims.get("email_verified")),
    };
    (email, verified)
}

/// A display name: `name`, else given + family name, else `preferred_username`.
pub fn display_name(claims: &Map<String, Value>) -> Option<String> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    s("name")
        .or_else(|| match (s("given_name"), s("family_name")) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (g, f) => g.or(f),
        })
        .or_else(|| s("preferred_username"))
}
