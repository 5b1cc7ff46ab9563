//! Identifier newtypes, parsed once at the boundary (config file, SCIM body, database) so the
//! rest of the code can trust them: team ids, provider ids, scopes and role names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier; the message says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn is_id_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

/// A team id: 4-64 characters of `[a-z0-9_-]`, not starting with a dash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamId(String);

impl TeamId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let len = s.chars().count();
        if !(4..=64).contains(&len) {
            return Err(ParseError(format!(
                "team id \"{s}\" has {len} characters; use 4 to 64"
            )));
        }
        if let Some(bad) = s.chars().find(|c| !is_id_char(*c)) {
            return Err(ParseError(format!(
                "team id \"{s}\" contains {bad:?}; use only lowercase letters, digits, '-' and '_'"
            )));
        }
        if s.starts_with('-') {
            return Err(ParseError(format!(
                "team id \"{s}\" starts with a dash; start it with a letter, digit or '_'"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A provider id: 1-32 characters of `[a-z0-9_-]`, starting with a letter. It appears in
/// URLs (`/callback/{id}`, `/scim/v2/{id}`), so it is kept URL-safe.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderId(String);

impl ProviderId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_slug(s, 32, "provider id").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A lowercase name of 1 to `max` characters of `[a-z0-9_-]` starting with a letter: the
/// rule shared by provider ids (which appear in URLs) and role names.
fn parse_slug(s: &str, max: usize, what: &str) -> Result<String, ParseError> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars().all(is_id_char)
        && s.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ParseError(format!(
            "{what} \"{s}\" is not valid; use 1 to {max} lowercase letters, digits, '-' or '_', starting with a letter"
        )))
    }
}

/// A role name such as `viewer` or `platform-admin`. Whether a role is known is decided by the
/// config (built-in list plus declared ones); this type only checks the spelling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Role(String);

/// The roles every deployment knows (DESIGN.md "Roles").
pub const BUILTIN_ROLES: &[&str] = &[
    "viewer",
    "editor",
    "owner",
    "agent",
    "platform-admin",
    "policy-manager",
    "policy-editor",
    "exception-reviewer",
    "exceptions-requester",
    "integrations-manager",
    "ticket-manager",
    "ticket-creator",
    "query-pack-manager",
    "query-pack-editor",
    "sla-manager",
];

impl Role {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_slug(s, 64, "role").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A scope path: `org/<id>`, `org/<id>/space/<id>` or `org/<id>/space/<id>/workspace/<id>`.
/// A role on a scope applies to everything beneath it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

const SCOPE_LEVELS: [&str; 3] = ["org", "space", "workspace"];

impl Scope {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            ParseError(format!(
                "scope \"{s}\" is not valid; write org/<id>, org/<id>/space/<id> or org/<id>/space/<id>/workspace/<id> (ids: letters, digits, '-', '_', '.')"
            ))
        };
        if !parts.len().is_multiple_of(2) || parts.is_empty() || parts.len() > 6 {
            return Err(bad());
        }
        for (i, pair) in parts.chunks(2).enumerate() {
            let id_ok = !pair[1].is_empty()
                && pair[1].len() <= 64
                && pair[1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if pair[0] != SCOPE_LEVELS[i] || !id_ok {
                return Err(bad());
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when a role held on `self` applies on `other` (same scope or beneath it).
    pub fn covers(&self, other: &Scope) -> bool {
        other.0 == self.0
            || (other.0.len() > self.0.len()
                && other.0.starts_with(&self.0)
                && other.0.as_bytes()[self.0.len()] == b'/')
    }
}

macro_rules! string_newtype_impls {
    ($($t:ident),*) => {$(
        impl TryFrom<String> for $t {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
string_newtype_impls!(TeamId, ProviderId, Role, Scope);

/// `8-4-4-4-12` hexadecimal digits, the only form Entra tenant ids take.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A random opaque id: 128 bits, URL-safe base64 (session CSRF tokens, public ids, request
/// ids).
pub fn random_id() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_ids_follow_the_rule() {
        for ok in ["abcd", "a_b-", "0123", "_x_y", &"a".repeat(64)] {
            assert!(TeamId::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["abc", "-abc", "ABCD", "ab cd", "abcé", &"a".repeat(65), ""] {
            assert!(TeamId::parse(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn scopes_parse_and_cover_their_descendants() {
        let org = Scope::parse("org/acme").unwrap();
        let space = Scope::parse("org/acme/space/infra").unwrap();
        let ws = Scope::parse("org/acme/space/infra/workspace/w1").unwrap();
        let other = Scope::parse("org/acme2").unwrap();
        assert!(org.covers(&space) && org.covers(&ws) && space.covers(&ws) && org.covers(&org));
        assert!(!space.covers(&org) && !org.covers(&other));
        for bad in [
            "org",
            "space/x",
            "org/a/workspace/b",
            "org/a/space/",
            "org/a/b/c",
            "org/a b",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad} should be invalid");
        }
    }
}
