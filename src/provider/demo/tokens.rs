//! What the demo IdP says about a user: the user claims of its ID tokens and userinfo (OIDC
//! Core §5.3.2) and the stable subject.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::DemoUser;

/// Scopes the demo IdP understands; others are ignored (RFC 6749 §3.3 lets the server grant
/// less than asked, and the token response then names what was granted).
pub(super) const SUPPORTED_SCOPES: [&str; 4] = ["openid", "email", "profile", "groups"];

/// The claims the demo IdP can release, for discovery's `claims_supported`.
pub(super) const CLAIMS: [&str; 13] = [
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "email",
    "email_verified",
    "name",
    "groups",
];

/// The stable subject of a demo user: derived from the email alone, so it survives restarts,
/// key changes and reordering of the config file. Config emails are already normalised.
pub(super) fn subject(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("demo-{hex}")
}

/// The user claims released for the granted scopes (OIDC Core §5.4): `email` releases email and
/// email_verified, `profile` releases name. Groups are always released: group mapping is the
/// reason the demo exists, and Entra sends its groups claim without a scope too.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(super) struct UserClaims {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub groups: Vec<String>,
}

impl UserClaims {
    pub(super) fn new(user: &DemoUser, scopes: &[String]) -> Self {
        let has = |s: &str| scopes.iter().any(|g| g == s);
        let email = has("email");
        Self {
            sub: subject(&user.email),
            email: email.then(|| user.email.clone()),
            // The demo vouches for its own configured addresses.
            email_verified: email.then_some(true),
            name: has("profile").then(|| user.name.clone()),
            groups: user.groups.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: &str) -> DemoUser {
        DemoUser {
            email: email.into(),
            name: "Alice Admin".into(),
            groups: vec!["g1".into()],
        }
    }

    #[test]
    fn the_subject_is_demo_and_sixteen_hex_digits_of_the_email_hash() {
        // sha256("alice@example.com") starts ff8d9819fc0e12bf (computed with coreutils sha256sum).
        assert_eq!(subject("alice@example.com"), "demo-ff8d9819fc0e12bf");
        assert_ne!(subject("alice@example.com"), subject("bob@example.com"));
    }

    #[test]
    fn claims_follow_the_granted_scopes_and_always_carry_groups() {
        let bare = UserClaims::new(&user("a@example.com"), &["openid".into()]);
        assert_eq!((bare.email.as_deref(), bare.name.as_deref()), (None, None));
        assert_eq!(bare.groups, vec!["g1".to_owned()]);
        let full = UserClaims::new(
            &user("a@example.com"),
            &["openid".into(), "email".into(), "profile".into()],
        );
        assert_eq!(full.email.as_deref(), Some("a@example.com"));
        assert_eq!(full.email_verified, Some(true));
        assert_eq!(full.name.as_deref(), Some("Alice Admin"));
    }
}
