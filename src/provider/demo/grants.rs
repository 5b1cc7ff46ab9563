//! Authorization codes and access tokens, held in memory only: a restart simply ends logins
//! in flight. Entries expire and are pruned as new ones arrive, and each table holds at most a
//! fixed number of entries, evicting the oldest first, so a flood of authorization requests
//! cannot grow memory without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::DemoUser;

/// RFC 6749 §4.1.2: codes are short-lived; ten minutes at most, one minute here.
pub(super) const CODE_TTL: Duration = Duration::from_secs(60);
/// Relying parties use the token at once (userinfo at login), so the ID token's lifetime will do.
pub(super) const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(300);
/// Entries per table: a few megabytes at worst (the nonce is capped). Codes are redeemed
/// within milliseconds, so evicting the oldest one under a flood only fails logins that have
/// been stuck for a long time, where refusing new entries would fail every login.
const CAPACITY: usize = 20_000;

/// What a code was issued for; checked again at the token endpoint.
#[derive(Debug, Clone)]
pub(super) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    /// BASE64URL(SHA256(code_verifier)) as sent at authorization (RFC 7636 §4.2).
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
    pub user: DemoUser,
    /// Unix seconds when the user picked, for the `auth_time` claim.
    pub auth_time: i64,
}

/// What an access token allows: reading the user's claims at userinfo.
#[derive(Debug, Clone)]
pub(super) struct AccessGrant {
    pub scopes: Vec<String>,
    pub user: DemoUser,
}

/// Why a code could not be redeemed.
#[derive(Debug, thiserror::Error)]
pub(super) enum RedeemError<E> {
    #[error("unknown or expired code")]
    Unknown,
    /// RFC 6749 §4.1.2: a second use; the access token of the first use is revoked.
    #[error("code already used")]
    Replayed,
    #[error(transparent)]
    Check(E),
}

enum CodeState {
    Issued(CodeGrant),
    /// Kept after use, until the code would have expired, so that a replay is recognised and
    /// the token bought with the first use revoked.
    Redeemed {
        access_token: String,
    },
}

/// A map whose entries expire after a fixed time, bounded in size.
struct Ledger<V> {
    entries: HashMap<String, (V, Instant)>,
    /// Keys in insertion order, which is also expiry order (one lifetime per ledger). May
    /// name keys already removed from `entries`; never shorter than `entries`.
    order: VecDeque<String>,
    ttl: Duration,
    capacity: usize,
}

impl<V> Ledger<V> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            capacity,
        }
    }

    fn insert(&mut self, key: String, value: V, now: Instant) {
        // Drop what has expired, then the oldest while full: O(1) amortised per insert.
        while let Some(oldest) = self.order.front() {
            let expired = self.entries.get(oldest).is_none_or(|(_, exp)| *exp <= now);
            if !expired && self.order.len() < self.capacity {
                break;
            }
            if let Some(oldest) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
        self.order.push_back(key.clone());
        self.entries.insert(key, (value, now + self.ttl));
    }

    fn get_mut(&mut self, key: &str, now: Instant) -> Option<&mut V> {
        self.entries
            .get_mut(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v)
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// The two tables, each behind its own lock. Lock order, where both are taken: codes, then
/// tokens.
pub(super) struct Grants {
    codes: Mutex<Ledger<CodeState>>,
    tokens: Mutex<Ledger<AccessGrant>>,
}

impl Default for Grants {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

/// A poisoned lock only means another request panicked mid-update; the maps stay consistent
/// (every update is a single insert, replace or remove), so keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Grants {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            codes: Mutex::new(Ledger::new(CODE_TTL, capacity)),
            tokens: Mutex::new(Ledger::new(ACCESS_TOKEN_TTL, capacity)),
        }
    }

    /// Store `grant` under a new random code and return the code.
    pub(super) fn issue_code(&self, grant: CodeGrant, now: Instant) -> String {
        let code = crate::provider::protocol::jwt::random_token();
        lock(&self.codes).insert(code.clone(), CodeState::Issued(grant), now);
        code
    }

    /// Redeem `code` once. The code is burnt whatever `check` says, so a guessed verifier
    /// cannot be retried; when `check` accepts the grant, `access_token` becomes valid.
    /// Runs under the codes lock so that a replay racing the first use still revokes its token.
    pub(super) fn redeem<E>(
        &self,
        code: &str,
        access_token: &str,
        now: Instant,
        check: impl FnOnce(&CodeGrant) -> Result<(), E>,
    ) -> Result<CodeGrant, RedeemError<E>> {
        let mut codes = lock(&self.codes);
        let Some(state) = codes.get_mut(code, now) else {
            return Err(RedeemError::Unknown);
        };
        if let CodeState::Redeemed {
            access_token: first,
        } = state
        {
            lock(&self.tokens).remove(first);
            return Err(RedeemError::Replayed);
        }
        let tombstone = CodeState::Redeemed {
            access_token: access_token.to_owned(),
        };
        let CodeState::Issued(grant) = std::mem::replace(state, tombstone) else {
            return Err(RedeemError::Replayed);
        };
        check(&grant).map_err(RedeemError::Check)?;
        let access = AccessGrant {
            scopes: grant.scopes.clone(),
            user: grant.user.clone(),
        };
        lock(&self.tokens).insert(access_token.to_owned(), access, now);
        Ok(grant)
    }

    /// The grant behind a live access token.
    pub(super) fn access(&self, access_token: &str, now: Instant) -> Option<AccessGrant> {
        lock(&self.tokens)
            .get_mut(access_token, now)
            .map(|g| g.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> CodeGrant {
        CodeGrant {
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            code_challenge: "x".repeat(43),
            nonce: None,
            scopes: vec!["openid".into()],
            user: DemoUser {
                email: "a@example.com".into(),
                name: "A".into(),
                groups: vec![],
            },
            auth_time: 0,
        }
    }

    fn accept(_: &CodeGrant) -> Result<(), ()> {
        Ok(())
    }

    #[test]
    fn a_code_is_refused_once_its_sixty_seconds_are_over() {
        let grants = Grants::default();
        let now = Instant::now();
        let code = grants.issue_code(grant(), now);
        let late = now + CODE_TTL + Duration::from_secs(1);
        let out = grants.redeem(&code, "at", late, accept);
        assert!(matches!(out, Err(RedeemError::Unknown)));
    }

    #[test]
    fn a_replayed_code_is_refused_and_revokes_the_first_access_token() {
        let grants = Grants::default();
        let now = Instant::now();
        let code = grants.issue_code(grant(), now);
        assert!(grants.redeem(&code, "at-1", now, accept).is_ok());
        assert!(grants.access("at-1", now).is_some());
        let replay = grants.redeem(&code, "at-2", now, accept);
        assert!(matches!(replay, Err(RedeemError::Replayed)));
        assert!(grants.access("at-1", now).is_none());
        assert!(grants.access("at-2", now).is_none());
    }

    #[test]
    fn a_code_refused_by_the_check_is_burnt() {
        let grants = Grants::default();
        let now = Instant::now();
        let code = grants.issue_code(grant(), now);
        let first = grants.redeem(&code, "at-1", now, |_| Err("bad verifier"));
        assert!(matches!(first, Err(RedeemError::Check("bad verifier"))));
        assert!(grants.access("at-1", now).is_none());
        let second = grants.redeem(&code, "at-2", now, accept);
        assert!(matches!(second, Err(RedeemError::Replayed)));
    }

    #[test]
    fn a_full_table_evicts_its_oldest_code_and_never_grows_past_its_capacity() {
        let grants = Grants::with_capacity(3);
        let now = Instant::now();
        let codes: Vec<String> = (0..10).map(|_| grants.issue_code(grant(), now)).collect();
        {
            let ledger = lock(&grants.codes);
            assert_eq!((ledger.entries.len(), ledger.order.len()), (3, 3));
        }
        assert!(matches!(
            grants.redeem(&codes[6], "at-6", now, accept),
            Err(RedeemError::Unknown)
        ));
        assert!(grants.redeem(&codes[7], "at-7", now, accept).is_ok());
    }

    #[test]
    fn expired_entries_are_pruned_as_new_ones_arrive() {
        let grants = Grants::with_capacity(100);
        let now = Instant::now();
        for _ in 0..5 {
            grants.issue_code(grant(), now);
        }
        grants.issue_code(grant(), now + CODE_TTL);
        assert_eq!(lock(&grants.codes).entries.len(), 1);
    }

    #[test]
    fn an_access_token_expires() {
        let grants = Grants::default();
        let now = Instant::now();
        let code = grants.issue_code(grant(), now);
        assert!(grants.redeem(&code, "at", now, accept).is_ok());
        assert!(grants.access("at", now + ACCESS_TOKEN_TTL).is_none());
    }
}
