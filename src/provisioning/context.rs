//! The context of one SCIM operation and the request shapes the HTTP adapter hands over: who
//! is calling (provider, config, trigger), the list query and its paging rules, `If-Match`,
//! and the rendered resource handed back.

use std::sync::Arc;

use serde_json::Value;

use crate::config::{Config, LiveConfig};
use crate::domain::Clock;
use crate::domain::scim::resource::Selection;
use crate::domain::scim::{DEFAULT_COUNT, MAX_RESULTS, ResourceType, SEARCH_REQUEST, ScimError};
use crate::store::audit::{Trigger, TriggerKind};
use crate::store::scim::Realm;

/// The caller of one SCIM request: the provider its token belongs to (and, for a multi-tenant
/// Entra provider, the one tenant the token is bound to), the config in force, and what audit
/// rows should say triggered the change.
#[derive(Clone)]
pub struct Ctx {
    pub provider: String,
    /// Where this caller's resources live: every lookup is scoped to it (security case J1).
    pub realm: Realm,
    /// The config when the request began: for reading and shaping resources.
    pub config: Arc<Config>,
    /// The config in force, read again inside write jobs to reconcile (see [`LiveConfig`]).
    pub(super) live: Arc<LiveConfig>,
    /// `{public_url}/scim/v2/{provider}`: the base of every `meta.location`.
    pub base_url: String,
    pub trigger: Trigger,
    pub(super) clock: Clock,
}

impl Ctx {
    pub fn new(
        provider: &str,
        tenant: Option<&str>,
        live: &Arc<LiveConfig>,
        clock: &Clock,
        request_id: Option<String>,
        method: &str,
        path: &str,
    ) -> Self {
        let config = live.get();
        Self {
            base_url: config.server.url(&format!("/scim/v2/{provider}")),
            provider: provider.to_owned(),
            realm: Realm::new(provider, tenant),
            config,
            live: live.clone(),
            trigger: Trigger::new(
                TriggerKind::Scim,
                request_id,
                Some(format!("SCIM {method} {path}")),
            ),
            clock: clock.clone(),
        }
    }

    pub(super) fn location(&self, rt: ResourceType, id: &str) -> String {
        format!("{}/{}/{}", self.base_url, rt.endpoint(), id)
    }

    /// A new SCIM id: a fixed-width millisecond timestamp, then 96 random bits. Time-ordered
    /// ids land at the right edge of the unique index instead of on a random page, so a batch
    /// of creations dirties a few index pages rather than one per request (measured under
    /// load); the random part keeps them unguessable.
    pub(super) fn new_id(&self) -> String {
        use base64::Engine;
        let millis = self.clock.now().unix_timestamp_nanos() / 1_000_000;
        let random: [u8; 12] = rand::random();
        format!(
            "{:011x}{}",
            millis.max(0),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
        )
    }
}

/// A rendered resource and what its response headers need.
#[derive(Debug, Clone)]
pub struct Resource {
    pub body: Value,
    pub etag: String,
    pub location: String,
}

/// The query of a list or `.search` request, as received (RFC 7644 §3.4.2, §3.4.3).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl ListQuery {
    /// Read a SearchRequest body (POST `.search`).
    pub fn from_search(body: &Value) -> Result<Self, ScimError> {
        let obj = body.as_object().ok_or_else(|| {
            ScimError::InvalidSyntax("the body must be a SearchRequest object".into())
        })?;
        let get = |k: &str| {
            obj.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        let is_search = get("schemas").and_then(Value::as_array).is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST))
            })
        });
        if !is_search {
            return Err(ScimError::InvalidSyntax(format!(
                "\"schemas\" must contain \"{SEARCH_REQUEST}\""
            )));
        }
        let text = |k: &str| -> Result<Option<String>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) if k != "filter" => Ok(Some(n.to_string())),
                Some(Value::Array(items)) if k.ends_with("ttributes") => Ok(Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                )),
                Some(_) => Err(ScimError::InvalidValue(format!(
                    "\"{k}\" has the wrong type"
                ))),
            }
        };
        Ok(Self {
            filter: text("filter")?,
            start_index: text("startIndex")?,
            count: text("count")?,
            attributes: text("attributes")?,
            excluded_attributes: text("excludedAttributes")?,
        })
    }

    pub(super) fn selection(&self, rt: ResourceType) -> Selection {
        Selection::parse(
            rt,
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }

    /// RFC 7644 §3.4.2.4: startIndex below 1 is 1; a negative count is 0; count is clamped to
    /// maxResults. Values must be integers (IdP quirk K1).
    pub(super) fn page(&self) -> Result<(usize, usize), ScimError> {
        let int = |name: &str, v: &Option<String>| -> Result<Option<i64>, ScimError> {
            v.as_deref()
                .map(|s| {
                    s.trim()
                        .parse::<i64>()
                        .map_err(|_| ScimError::InvalidValue(format!("{name} must be an integer")))
                })
                .transpose()
        };
        let start = int("startIndex", &self.start_index)?.unwrap_or(1).max(1);
        let count = match int("count", &self.count)? {
            None => DEFAULT_COUNT,
            Some(c) => usize::try_from(c.max(0)).unwrap_or(0).min(MAX_RESULTS),
        };
        Ok((usize::try_from(start).unwrap_or(1), count))
    }
}

/// Whether an `If-Match` header allows a write on `version` (RFC 7644 §3.14, RFC 7232 §3.1
/// with weak comparison, since teamgate's ETags are weak).
pub fn if_match_ok(header: Option<&str>, version: i64) -> bool {
    let Some(header) = header else { return true };
    let want = version.to_string();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == want)
}

pub(super) fn check_version(if_match: Option<&str>, version: i64) -> Result<(), ScimError> {
    if if_match_ok(if_match, version) {
        Ok(())
    } else {
        Err(ScimError::PreconditionFailed)
    }
}

pub(super) fn not_found(rt: ResourceType, id: &str) -> ScimError {
    ScimError::NotFound(format!(
        "{} {} not found",
        rt.name(),
        id.chars().take(64).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn if_match_accepts_star_weak_and_strong_forms_of_the_current_version() {
        assert!(if_match_ok(None, 3));
        assert!(if_match_ok(Some("*"), 3));
        assert!(if_match_ok(Some("W/\"3\""), 3));
        assert!(if_match_ok(Some("\"3\""), 3));
        assert!(if_match_ok(Some("W/\"1\", W/\"3\""), 3));
        assert!(!if_match_ok(Some("W/\"2\""), 3));
    }

    #[test]
    fn case_71_paging_values_are_clamped_and_must_be_integers() {
        let q = |s: Option<&str>, c: Option<&str>| ListQuery {
            start_index: s.map(str::to_owned),
            count: c.map(str::to_owned),
            ..ListQuery::default()
        };
        assert_eq!(q(None, None).page().unwrap(), (1, DEFAULT_COUNT));
        assert_eq!(q(Some("0"), Some("-5")).page().unwrap(), (1, 0));
        assert_eq!(
            q(Some("-3"), Some("100000")).page().unwrap(),
            (1, MAX_RESULTS)
        );
        assert_eq!(q(Some("11"), Some("10")).page().unwrap(), (11, 10));
        assert!(matches!(
            q(Some("one"), None).page(),
            Err(ScimError::InvalidValue(_))
        ));
        assert!(matches!(q(None, Some("1.5")), ListQuery { .. }));
        assert!(matches!(
            q(None, Some("1.5")).page(),
            Err(ScimError::InvalidValue(_))
        ));
    }

    #[test]
    fn a_search_request_body_becomes_a_list_query() {
        let q = ListQuery::from_search(&json!({
            "schemas": [SEARCH_REQUEST],
            "filter": "userName eq \"a\"",
            "startIndex": 2,
            "count": 5,
            "attributes": ["userName", "emails"],
        }))
        .unwrap();
        assert_eq!(q.filter.as_deref(), Some("userName eq \"a\""));
        assert_eq!(q.start_index.as_deref(), Some("2"));
        assert_eq!(q.attributes.as_deref(), Some("userName,emails"));
        assert!(matches!(
            ListQuery::from_search(&json!({"filter": "x"})),
            Err(ScimError::InvalidSyntax(_))
        ));
    }
}
