//! Authorization codes and access tokens, held in memory only: a restart simply ends logins
//! in flight. Every entry expires, expired entries are pruned, and each table has a hard size
//! limit so that a flood of authorization requests cannot grow memory without bound.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::DemoUser;

/// RFC 6749 §4.1.2: codes are short-lived; ten minutes at most, one minute here.
pub(super) const CODE_TTL: Duration = Duration::from_secs(60);
pub(super) const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(600);
/// Live entries per table. Each holds well under a kilobyte (the nonce is capped), so the
/// worst case is a few megabytes.
const CAPACITY: usize = 10_000;

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

/// The table is full of live entries.
#[derive(Debug, thiserror::Error)]
#[error("too many outstanding grants")]
pub(super) struct Full;

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
    #[error(transparent)]
    Full(#[from] Full),
}

enum CodeState {
    Issued(CodeGrant),
    /// Kept after use so that a replay can be detected and the first token revoked.
    Redeemed {
        access_token: String,
    },
}

/// A map whose entries expire, with a hard size limit.
struct Ledger<V> {
    entries: HashMap<String, (V, Instant)>,
    capacity: usize,
}

impl<V> Ledger<V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    fn insert(
        &mut self,
        key: String,
        value: V,
        expires: Instant,
        now: Instant,
    ) -> Result<(), Full> {
        // Pruning only when full keeps inserts O(1) while still bounding memory.
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, (_, exp)| *exp > now);
            if self.entries.len() >= self.capacity {
                return Err(Full);
            }
        }
        self.entries.insert(key, (value, expires));
        Ok(())
    }

    fn get_mut(&mut self, key: &str, now: Instant) -> Option<&mut (V, Instant)> {
        self.entries.get_mut(key).filter(|(_, exp)| *exp > now)
    }

    fn remove(&mut self, key: &str) -> Option<V> {
        self.entries.remove(key).map(|(v, _)| v)
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
/// (every update is a single insert or remove), so keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Grants {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            codes: Mutex::new(Ledger::new(capacity)),
            tokens: Mutex::new(Ledger::new(capacity)),
        }
    }

    /// Store `grant` under a new random code and return the code.
    pub(super) fn issue_code(&self, grant: CodeGrant, now: Instant) -> Result<String, Full> {
        let code = super::tokens::random_token();
        lock(&self.codes).insert(code.clone(), CodeState::Issued(grant), now + CODE_TTL, now)?;
        Ok(code)
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
        let Some(entry) = codes.get_mut(code, now) else {
            return Err(RedeemError::Unknown);
        };
        if let CodeState::Redeemed {
            access_token: first,
        } = &entry.0
        {
            lock(&self.tokens).remove(first);
            return Err(RedeemError::Replayed);
        }
        let tombstone = CodeState::Redeemed {
            access_token: access_token.to_owned(),
        };
        let CodeState::Issued(grant) = std::mem::replace(&mut entry.0, tombstone) else {
            return Err(RedeemError::Replayed);
        };
        // The tombstone lives as long as the token it may have to revoke.
        entry.1 = now + ACCESS_TOKEN_TTL;
        check(&grant).map_err(RedeemError::Check)?;
        let access = AccessGrant {
            scopes: grant.scopes.clone(),
            user: grant.user.clone(),
        };
        lock(&self.tokens).insert(access_token.to_owned(), access, now + ACCESS_TOKEN_TTL, now)?;
        Ok(grant)
    }

    /// The grant behind a live access token.
    pub(super) fn access(&self, access_token: &str, now: Instant) -> Option<AccessGrant> {
        lock(&self.tokens)
            .get_mut(access_token, now)
            .map(|(g, _)| g.clone())
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
        let code = grants.issue_code(grant(), now).expect("room for a code");
        let late = now + CODE_TTL + Duration::from_secs(1);
        let out = grants.redeem(&code, "at", late, accept);
        assert!(matches!(out, Err(RedeemError::Unknown)));
    }

    #[test]
    fn a_replayed_code_is_refused_and_revokes_the_first_access_token() {
        let grants = Grants::default();
        let now = Instant::now();
        let code = grants.issue_code(grant(), now).expect("room for a code");
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
        let code = grants.issue_code(grant(), now).expect("room for a code");
        let first = grants.redeem(&code, "at-1", now, |_| Err("bad verifier"));
        assert!(matches!(first, Err(RedeemError::Check("bad verifier"))));
        assert!(grants.access("at-1", now).is_none());
        assert!(matches!(
            grants.redeem(&code, "at-2", now, accept),
            Err(RedeemError::Replayed)
        ));
    }

    #[test]
    fn a_full_table_refuses_new_codes_until_old_ones_expire() {
        let grants = Grants::with_capacity(2);
        let now = Instant::now();
        assert!(grants.issue_code(grant(), now).is_ok());
        assert!(grants.issue_code(grant(), now).is_ok());
        assert!(grants.issue_code(grant(), now).is_err());
        let later = now + CODE_TTL + Duration::from_secs(1);
        assert!(grants.issue_code(grant(), later).is_ok());
        assert_eq!(lock(&grants.codes).entries.len(), 1);
    }

    #[test]
    fn an_access_token_expires() {
        let grants = Grants::default();
        let now = Instant::now();
        let code = grants.issue_code(grant(), now).expect("room for a code");
        assert!(grants.redeem(&code, "at", now, accept).is_ok());
        assert!(grants.access("at", now + ACCESS_TOKEN_TTL).is_none());
    }
}
