//! The signed assertion handed to protected apps (an ES256 JWT) and the per-user cache that
//! keeps `/auth` from signing on every request. A cache entry also holds the identity headers
//! and the resolved teams and roles the route rules are checked against, so a cache hit costs
//! no database read and no signature.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use super::DownstreamError;
use super::keys::KeySet;
use crate::config::Config;
use crate::domain::roles::EffectiveRoles;
use crate::membership::Identity;

/// The JOSE `typ` of the assertion. RFC 8725 §3.11 (explicit typing): a verifier that checks it
/// cannot mistake the assertion for another kind of JWT signed by the same key, or vice versa.
pub const TYP: &str = "teamgate-assertion+jwt";

/// The one algorithm teamgate signs with. RFC 8725 §3.1: verifiers pin it rather than trusting
/// the header, and ES256 keeps the token short next to RS256.
pub const ALG: Algorithm = Algorithm::ES256;

/// The claims of the assertion. Compact on purpose: resolved team ids and `scope=role` pairs,
/// never the IdP's raw group list (which can run to hundreds of ids).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// `server.public_url` without a trailing slash.
    pub iss: String,
    /// One app (RFC 8725 §3.9): `?aud=` of the route, or `forward_auth.assertion_audience`.
    pub aud: String,
    /// The user's stable opaque id (`X-Teamgate-User`).
    pub sub: String,
    /// Only a verified email (see `email_verified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the IdP verified the user's email; `email` is present only when it did.
    pub email_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub teams: Vec<String>,
    pub roles: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// What a cache hit hands to `/auth`: the headers to send and what the route rules need.
pub struct Handover {
    /// Team ids, sorted.
    pub teams: BTreeSet<String>,
    pub roles: EffectiveRoles,
    /// Every identity header, values from the session's user only (security case 58).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The user's email or id, for the 403 page.
    pub label: String,
    /// Unix seconds after which the entry is rebuilt (new identity read, new signature).
    refresh_at: i64,
    /// The config the entry was built under; a reload (new team names, bindings, header names
    /// or audience) makes every entry stale. `Weak` keeps the allocation, so no later config can
    /// reuse its address.
    config: Weak<Config>,
}

/// When an entry built at `iat` must be rebuilt: halfway through the assertion's life, so an
/// app always receives at least half the lifetime, and a team or role change (SCIM, login, a
/// config reload aside, which is immediate) reaches apps within `ttl / 2` (security case 52).
pub fn refresh_after(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs() / 2).unwrap_or(i64::MAX).max(1)
}

/// Sign the assertion for `identity` and build the entry that `/auth` serves until
/// [`refresh_after`].
pub fn build(
    config: &Arc<Config>,
    identity: &Identity,
    keys: &KeySet,
    aud: &str,
    now: i64,
) -> Result<Handover, DownstreamError> {
    let ttl = config.forward_auth.assertion_ttl;
    let teams: BTreeSet<String> = identity.teams.iter().map(|t| t.id.clone()).collect();
    let roles = identity.effective.pairs();
    let claims = Claims {
        iss: config
            .server
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
        aud: aud.to_owned(),
        sub: identity.id.clone(),
        email: identity.email.clone(),
        email_verified: identity.email_verified,
        name: identity.name.clone(),
        teams: teams.iter().cloned().collect(),
        roles: roles.clone(),
        iat: now,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(300),
        jti: crate::domain::ids::random_id(),
    };
    let mut header = Header::new(ALG);
    header.typ = Some(TYP.to_owned());
    header.kid = Some(keys.signing.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &keys.signing.encoding)?;

    let value_of = |key: &str| -> String {
        match key {
            "user" => identity.id.clone(),
            // `Identity` holds a verified email only: an unverified one never reaches an app.
            "email" => identity.email.clone().unwrap_or_default(),
            "email_verified" => identity.email_verified.to_string(),
            "name" => identity.name.clone().unwrap_or_default(),
            "teams" => claims.teams.join(","),
            "roles" => roles.join(","),
            "assertion" => token.clone(),
            _ => String::new(),
        }
    };
    let mut headers = Vec::with_capacity(config.forward_auth.headers.len());
    for (key, name) in &config.forward_auth.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| DownstreamError::Header(format!("forward_auth.headers.{key}: {e}")))?;
        headers.push((name, header_value(&value_of(key))?));
    }
    Ok(Handover {
        teams,
        roles: identity.effective.clone(),
        headers,
        label: identity
            .email
            .clone()
            .unwrap_or_else(|| identity.id.clone()),
        refresh_at: now + refresh_after(ttl),
        config: Arc::downgrade(config),
    })
}

/// A header value from an IdP-supplied string. Every header is sent, empty when the user has
/// no such attribute, so a proxy that copies "headers present in the auth response" still
/// overwrites a client's forged one. Non-ASCII text (a name like "Zoë") is sent as raw UTF-8
/// (RFC 9110 §5.5 obs-text); control characters, which could split a header, become spaces.
pub fn header_value(text: &str) -> Result<HeaderValue, DownstreamError> {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    HeaderValue::from_bytes(clean.as_bytes())
        .map_err(|e| DownstreamError::Header(format!("cannot build a header value: {e}")))
}

/// Which entry a request may use: the session's user, the user's session generation (so a
/// revocation misses the cache even before the session check refuses it), the user's profile
/// as stored now (so a name or email change, by a sign-in or a SCIM push, reaches the very
/// next request: security case J5), and the audience.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub user_id: i64,
    pub generation: i64,
    pub profile: u64,
    pub aud: String,
}

impl CacheKey {
    pub fn new(user: &crate::store::users::UserRecord, aud: &str) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&user.name, &user.email, user.email_verified).hash(&mut h);
        Self {
            user_id: user.id,
            generation: user.session_generation,
            profile: h.finish(),
            aud: aud.to_owned(),
        }
    }
}

/// Most entries kept: about 1.5 KB each, so the cache stays near 30 MB at worst.
const MAX_ENTRIES: usize = 20_000;

/// Grants by [`CacheKey`]. Reads share a lock; a miss signs outside it.
#[derive(Default)]
pub struct Cache {
    entries: RwLock<HashMap<CacheKey, Arc<Handover>>>,
}

impl Cache {
    /// The entry for `key`, when it was built under `config` and is not due for a refresh.
    pub fn get(&self, key: &CacheKey, config: &Arc<Config>, now: i64) -> Option<Arc<Handover>> {
        let entries = match self.entries.read() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries
            .get(key)
            .filter(|g| now < g.refresh_at && std::ptr::eq(g.config.as_ptr(), Arc::as_ptr(config)))
            .cloned()
    }

    /// Keep `grant` for `key`. When the cache is full, stale entries go first, and if every
    /// entry is fresh the cache starts over (each user then costs one more signature).
    pub fn insert(&self, key: CacheKey, grant: Handover, now: i64) -> Arc<Handover> {
        let grant = Arc::new(grant);
        let mut entries = match self.entries.write() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, g| now < g.refresh_at && g.config.strong_count() > 0);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, grant.clone());
        grant
    }

    pub fn len(&self) -> usize {
        match self.entries.read() {
            Ok(e) => e.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_keep_utf8_and_lose_control_characters() {
        assert_eq!(
            header_value("Zoë Ölund").unwrap().as_bytes(),
            "Zoë Ölund".as_bytes()
        );
        assert_eq!(
            header_value("a\r\nX-Teamgate-Teams: admins").unwrap(),
            "a  X-Teamgate-Teams: admins"
        );
        assert_eq!(header_value("").unwrap(), "");
    }

    #[test]
    fn an_entry_is_refreshed_halfway_through_the_assertion_life() {
        assert_eq!(refresh_after(Duration::from_secs(120)), 60);
        assert_eq!(refresh_after(Duration::from_secs(10)), 5);
        assert_eq!(refresh_after(Duration::from_secs(1)), 1);
    }
}
