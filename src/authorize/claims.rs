//! What a client learns about a user, and whether the user may sign in to it at all. Pure: the
//! caller brings the user, their identity (teams and roles) and the client's config.
//!
//! Decision: `sub` is the user's global public id, the same for every client and the same as
//! forward-auth's `X-Teamgate-User` and the assertion's `sub` (OIDC Core §8 "public"). Every
//! client is an application of the organisation that runs teamgate, registered by its
//! administrator, and telling the same person apart across them (audit, support, the admin
//! pages) is the point; pairwise subjects protect users from colluding relying parties of
//! different owners, which is not the situation here. Dex makes the same choice.

use serde::Serialize;

use crate::config::{ClientClaim, ClientConfig};
use crate::membership::Identity;
use crate::store::users::UserRecord;

/// Scopes teamgate's provider understands; others are ignored and not granted (RFC 6749 §3.3).
/// `offline_access` is not among them: every client gets a refresh token, and no token outlives
/// the teamgate session it was issued in.
pub const SUPPORTED_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// The claims teamgate may release, for discovery's `claims_supported`.
pub const CLAIMS_SUPPORTED: [&str; 16] = [
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "email",
    "email_verified",
    "name",
    "teams",
    "roles",
    "groups",
];

/// The user claims of an ID token and of userinfo (OIDC Core §5.1, plus teamgate's own).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserClaims {
    pub sub: String,
    /// Only a verified email is released (OIDC Core §5.1, `email_verified`), for the `email`
    /// scope and a client that receives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Team ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<String>>,
    /// `scope=role` pairs, as in `X-Teamgate-Roles`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The team ids again, for applications that only read a `groups` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// What `client` receives about `user` for `scopes`.
pub fn user_claims(
    client: &ClientConfig,
    user: &UserRecord,
    identity: &Identity,
    scopes: &[String],
) -> UserClaims {
    let has = |s: &str| scopes.iter().any(|g| g == s);
    let email = (has("email") && client.releases(ClientClaim::Email) && user.email_verified)
        .then(|| user.email.clone())
        .flatten();
    let teams: Vec<String> = identity.teams.iter().map(|t| t.id.clone()).collect();
    let roles: Vec<String> = identity
        .roles
        .iter()
        .map(|r| format!("{}={}", r.scope, r.role))
        .collect();
    UserClaims {
        sub: user.public_id.clone(),
        email_verified: email.as_ref().map(|_| true),
        email,
        name: (has("profile") && client.releases(ClientClaim::Name))
            .then(|| user.name.clone())
            .flatten(),
        groups: client.releases(ClientClaim::Groups).then(|| teams.clone()),
        teams: client.releases(ClientClaim::Teams).then_some(teams),
        roles: client.releases(ClientClaim::Roles).then_some(roles),
    }
}

/// Whether `identity` may sign in to `client`: members of one of its `allowed_teams`, or anyone
/// signed in when it lists none.
pub fn allowed(client: &ClientConfig, identity: &Identity) -> bool {
    client.allowed_teams.is_empty()
        || client
            .allowed_teams
            .iter()
            .any(|t| identity.teams.iter().any(|held| held.id == t.as_str()))
}

/// The granted scopes: the requested ones teamgate understands, `openid` first, in the order
/// of [`SUPPORTED_SCOPES`].
pub fn granted_scopes(requested: &str) -> Vec<String> {
    let requested: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
    SUPPORTED_SCOPES
        .iter()
        .filter(|s| requested.contains(s))
        .map(|s| (*s).to_owned())
        .collect()
}

/// What `teamgate explain USER --client ID` shows: whether the user may sign in to the
/// client, and the claims it would receive with every scope granted.
#[derive(Debug, Clone, Serialize)]
pub struct ClientExplanation {
    pub client_id: String,
    pub client_name: String,
    pub allowed: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    pub claims: UserClaims,
}

/// [`ClientExplanation`] of `user` for `client`.
pub fn explain(client: &ClientConfig, user: &UserRecord, identity: &Identity) -> ClientExplanation {
    let all: Vec<String> = SUPPORTED_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let is_allowed = allowed(client, identity) && user.active;
    let refusal = if !user.active {
        Some("the account is deactivated".to_owned())
    } else if !is_allowed {
        Some(format!(
            "not a member of any allowed team ({})",
            client
                .allowed_teams
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        None
    };
    ClientExplanation {
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        allowed: is_allowed,
        refusal,
        claims: user_claims(client, user, identity, &all),
    }
}

impl ClientExplanation {
    /// For a terminal.
    pub fn render_text(&self) -> String {
        let mut out = format!("Client {} (\"{}\"): ", self.client_id, self.client_name);
        match &self.refusal {
            None => out.push_str("may sign in.\n"),
            Some(why) => out.push_str(&format!("REFUSED: {why}.\n")),
        }
        out.push_str("With the scopes openid email profile it would receive:\n");
        let json = serde_json::to_value(&self.claims).unwrap_or_default();
        if let Some(map) = json.as_object() {
            for (k, v) in map {
                out.push_str(&format!("  {k}: {v}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::SigningAlg;
    use crate::domain::TeamId;
    use crate::membership::identity::{RoleView, TeamView};

    fn client(claims: &[ClientClaim], allowed: &[&str]) -> ClientConfig {
        ClientConfig {
            id: "grafana".into(),
            name: "Grafana".into(),
            secret: None,
            public: true,
            redirect_uris: vec!["https://g.example.com/cb".into()],
            post_logout_redirect_uris: vec![],
            allowed_teams: allowed.iter().map(|t| TeamId::parse(t).unwrap()).collect(),
            claims: claims.iter().copied().collect::<BTreeSet<_>>(),
            id_token_alg: SigningAlg::Rs256,
            line: 1,
        }
    }

    fn user(verified: bool) -> UserRecord {
        UserRecord {
            id: 1,
            public_id: "pub-1".into(),
            provider: "idp".into(),
            subject: "s".into(),
            email: Some("a@example.com".into()),
            email_verified: verified,
            name: Some("Alice".into()),
            active: true,
            session_generation: 0,
            claims_groups: None,
            claims_groups_at: None,
            last_login_at: None,
        }
    }

    fn identity() -> Identity {
        Identity {
            id: "pub-1".into(),
            email: None,
            email_verified: false,
            name: None,
            provider: "idp".into(),
            teams: vec![TeamView {
                id: "engineers".into(),
                name: "Engineers".into(),
                grants: vec![],
            }],
            roles: vec![RoleView {
                scope: "org/acme".into(),
                role: "viewer".into(),
                teams: vec!["engineers".into()],
                via: vec!["engineers".into()],
                implied: false,
            }],
            effective: Default::default(),
        }
    }

    fn scopes(s: &str) -> Vec<String> {
        granted_scopes(s)
    }

    #[test]
    fn an_unverified_email_is_never_released_and_a_verified_one_needs_the_email_scope() {
        let c = client(&ClientClaim::ALL, &[]);
        let unverified = user_claims(&c, &user(false), &identity(), &scopes("openid email"));
        assert_eq!((unverified.email, unverified.email_verified), (None, None));
        let verified = user_claims(&c, &user(true), &identity(), &scopes("openid email"));
        assert_eq!(verified.email.as_deref(), Some("a@example.com"));
        assert_eq!(verified.email_verified, Some(true));
        let no_scope = user_claims(&c, &user(true), &identity(), &scopes("openid"));
        assert_eq!(no_scope.email, None);
    }

    #[test]
    fn teams_roles_and_groups_follow_the_clients_claims_list() {
        let all = user_claims(
            &client(&ClientClaim::ALL, &[]),
            &user(true),
            &identity(),
            &scopes("openid"),
        );
        assert_eq!(all.teams, Some(vec!["engineers".to_owned()]));
        assert_eq!(all.groups, Some(vec!["engineers".to_owned()]));
        assert_eq!(all.roles, Some(vec!["org/acme=viewer".to_owned()]));
        assert_eq!(all.sub, "pub-1");
        let only_roles = user_claims(
            &client(&[ClientClaim::Roles], &[]),
            &user(true),
            &identity(),
            &scopes("openid email profile"),
        );
        assert_eq!(
            (
                only_roles.teams,
                only_roles.groups,
                only_roles.email,
                only_roles.name
            ),
            (None, None, None, None)
        );
        assert!(only_roles.roles.is_some());
    }

    #[test]
    fn allowed_teams_admit_members_only_and_an_empty_list_admits_everyone() {
        assert!(allowed(&client(&[], &[]), &identity()));
        assert!(allowed(
            &client(&[], &["engineers", "operators"]),
            &identity()
        ));
        assert!(!allowed(&client(&[], &["operators"]), &identity()));
    }

    #[test]
    fn unknown_scopes_are_not_granted_and_openid_comes_first() {
        assert_eq!(
            granted_scopes("profile groups openid  email"),
            ["openid", "email", "profile"]
        );
    }
}
