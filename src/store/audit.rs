//! Records of the append-only audit log: one row per membership added or removed and per
//! notable event, naming what triggered it.

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::reconcile::Source;

/// What kind of event caused a change. The audit log's `trigger` column holds [`as_str`].
///
/// [`as_str`]: TriggerKind::as_str
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// A browser sign-in.
    Login,
    /// A refresh-token re-evaluation of a signed-in user's groups.
    Refresh,
    /// A SCIM request.
    Scim,
    /// A config sync (start or reload).
    Config,
    /// An action on the admin pages.
    Admin,
    /// A command-line tool.
    Cli,
    /// An application's OpenID Connect request to teamgate's provider.
    Client,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 7] = [
        TriggerKind::Login,
        TriggerKind::Refresh,
        TriggerKind::Scim,
        TriggerKind::Config,
        TriggerKind::Admin,
        TriggerKind::Cli,
        TriggerKind::Client,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Login => "login",
            TriggerKind::Refresh => "refresh",
            TriggerKind::Scim => "scim",
            TriggerKind::Config => "config",
            TriggerKind::Admin => "admin",
            TriggerKind::Cli => "cli",
            TriggerKind::Client => "client",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What caused a change, carried down to every audit row it writes.
#[derive(Debug, Clone, Serialize)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// The HTTP request id, when there is one.
    pub request_id: Option<String>,
    /// A short human description (the SCIM method and path, the config file...).
    pub detail: Option<String>,
}

impl Trigger {
    pub fn new(kind: TriggerKind, request_id: Option<String>, detail: Option<String>) -> Self {
        Self {
            kind,
            request_id,
            detail,
        }
    }
}

/// One audit row to write.
#[derive(Debug, Default)]
pub struct Entry<'a> {
    pub user_id: Option<i64>,
    pub user_label: Option<&'a str>,
    pub action: &'a str,
    pub team: Option<&'a str>,
    pub source: Option<&'a str>,
    pub via: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// An audit row as read back.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub trigger: String,
    pub request_id: Option<String>,
    pub user_id: Option<i64>,
    pub user_label: Option<String>,
    pub action: String,
    pub team: Option<String>,
    pub source: Option<String>,
    pub via: Option<String>,
    pub detail: Option<String>,
}

/// Filters of an audit-log query; every `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Rows about these user ids, or whose stored label equals `user_label` (deleted users
    /// keep their label).
    pub user_ids: Vec<i64>,
    pub user_label: Option<String>,
    pub team: Option<String>,
    pub source: Option<Source>,
    /// A trigger name as stored ([`TriggerKind::as_str`]).
    pub trigger: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// At most this many rows, the newest.
    pub limit: usize,
}
