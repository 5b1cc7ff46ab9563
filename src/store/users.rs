//! Records of people: the login identity (`users`), keyed by (provider, subject), with the
//! groups their last login carried and their session generation.

use serde::Serialize;

use crate::domain::explain::UserSummary;

/// A stored user.
#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub id: i64,
    /// The stable opaque id given to applications (`X-Teamgate-User`, assertion `sub`).
    pub public_id: String,
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub active: bool,
    pub session_generation: i64,
    /// Group keys from the last login; `None` when never known.
    pub claims_groups: Option<Vec<String>>,
    pub claims_groups_at: Option<String>,
    pub last_login_at: Option<String>,
}

impl UserRecord {
    /// What to call the user in logs and audit rows.
    pub fn label(&self) -> String {
        label(self.email.as_deref(), &self.provider, &self.subject)
    }

    /// The user as `explain` presents them.
    pub fn summary(&self) -> UserSummary {
        UserSummary {
            label: self.label(),
            public_id: self.public_id.clone(),
            provider: self.provider.clone(),
            subject: self.subject.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            active: self.active,
            last_login_at: self.last_login_at.clone(),
            claims_groups_at: self.claims_groups_at.clone(),
        }
    }
}

/// What a successful login (or a refresh re-evaluation) tells us about the user.
#[derive(Debug, Clone)]
pub struct LoginProfile {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// `None`: membership could not be resolved (e.g. Graph failed): keep what is stored.
    pub claims_groups: Option<Vec<String>>,
}

/// The profile an identity shows applications (`X-Teamgate-Name`, `-Email`, the assertion).
/// The newest source wins: a login sets it from the IdP's claims, a SCIM change of the
/// provisioned user's name or email sets it from the push (security case 74, J5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: Option<String>,
    pub email: Option<String>,
    /// True only when the IdP said so at a login; an email set by SCIM is never verified.
    pub email_verified: bool,
}

/// A new login identity a SCIM push creates (or finds) for a provisioned user.
#[derive(Debug, Clone, Copy)]
pub struct NewIdentity<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub active: bool,
}

impl NewIdentity<'_> {
    /// What to call the identity in logs and audit rows, as [`UserRecord::label`] does.
    pub fn label(&self) -> String {
        label(self.email, self.provider, self.subject)
    }
}

/// A user's email, or `provider:subject` when there is none.
fn label(email: Option<&str>, provider: &str, subject: &str) -> String {
    email.map_or_else(|| format!("{provider}:{subject}"), str::to_owned)
}

/// The login identity [`super::port::UserWrites::link_identity`] linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linked {
    pub user_id: i64,
    /// The identity row was created by this call (so it holds no membership, session or SCIM
    /// link yet); false when an existing identity was found.
    pub created: bool,
}
