//! SCIM bearer tokens: creating, listing and revoking them (`teamgate scim-token`), and the
//! check every SCIM request makes. A token is 256 random bits shown once at creation; the database keeps
//! only its SHA-256, so a lookup by hash followed by a constant-time comparison of the hashes
//! is the whole check (RFC 7644 §7.4, security case 77). Tokens expire, can be revoked, and
//! several may be live at once so an IdP can be moved to a new token before the old one goes.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::domain::Clock;
use crate::domain::secret::Secret;
use crate::store::scim::{NewToken as TokenToStore, TokenRow};
use crate::store::{Store, StoreError};

/// Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "tgscim_";
/// Lifetime when `create` is given none.
pub const DEFAULT_VALID_DAYS: u32 = 365;
/// Longest lifetime accepted: tokens must expire (RFC 7644 §7.4).
pub const MAX_VALID_DAYS: u32 = 3 * 365;
/// Longer presented tokens are refused without hashing.
const MAX_TOKEN_LEN: usize = 256;

/// Why a token command failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("provider \"{0}\" is not in the config; use one of the [[provider]] ids")]
    UnknownProvider(String),
    #[error(
        "no live token \"{id}\" for provider \"{provider}\"; see `teamgate scim-token list {provider}`"
    )]
    NotFound { provider: String, id: String },
    #[error("the lifetime must be 1 to {MAX_VALID_DAYS} days")]
    InvalidLifetime,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token just created: the only time its value exists outside the IdP's config.
#[derive(Debug)]
pub struct NewToken {
    pub id: String,
    pub provider: String,
    pub token: Secret,
    pub expires_at: time::OffsetDateTime,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn provider_of<'a>(
    config: &'a Config,
    provider: &str,
) -> Result<&'a crate::config::ProviderConfig, TokenError> {
    config
        .provider(provider)
        .ok_or_else(|| TokenError::UnknownProvider(provider.to_owned()))
}

/// Create a token for `provider`, valid for `valid_days`.
pub async fn create(
    store: &Store,
    clock: &Clock,
    config: &Config,
    provider: &str,
    valid_days: u32,
    note: Option<String>,
) -> Result<NewToken, TokenError> {
    provider_of(config, provider)?;
    if !(1..=MAX_VALID_DAYS).contains(&valid_days) {
        return Err(TokenError::InvalidLifetime);
    }
    let bytes: [u8; 32] = rand::random();
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let digest = hash(&token);
    let id = crate::domain::ids::random_id()
        .chars()
        .take(12)
        .collect::<String>();
    let expires_at = clock.now() + time::Duration::days(i64::from(valid_days));
    let (id_w, provider_w, created) = (id.clone(), provider.to_owned(), clock.stamp());
    let expires = expires_at.unix_timestamp();
    store
        .write(move |tx| {
            tx.insert_scim_token(&TokenToStore {
                public_id: &id_w,
                provider: &provider_w,
                hash: digest,
                created_at: &created,
                expires_at: expires,
                note: note.as_deref(),
            })
        })
        .await?;
    Ok(NewToken {
        id,
        provider: provider.to_owned(),
        token: Secret::new(token),
        expires_at,
    })
}

/// Every token of `provider` (never their values).
pub async fn list(
    store: &Store,
    config: &Config,
    provider: &str,
) -> Result<Vec<TokenRow>, TokenError> {
    provider_of(config, provider)?;
    let p = provider.to_owned();
    Ok(store.read(move |tx| tx.scim_tokens(&p)).await?)
}

/// Revoke token `id` of `provider`; requests with it fail from the next one on.
pub async fn revoke(
    store: &Store,
    clock: &Clock,
    config: &Config,
    provider: &str,
    id: &str,
) -> Result<(), TokenError> {
    provider_of(config, provider)?;
    let (p, i, now) = (provider.to_owned(), id.to_owned(), clock.stamp());
    let revoked = store
        .write(move |tx| tx.revoke_scim_token(&p, &i, &now))
        .await?;
    if revoked {
        Ok(())
    } else {
        Err(TokenError::NotFound {
            provider: provider.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// Whether `presented` is a live token of `provider`. A token of another provider, an expired
/// or a revoked one are all simply "not valid" (security cases 75, 78).
pub async fn verify(
    store: &Store,
    clock: &Clock,
    provider: &str,
    presented: &str,
) -> Result<bool, StoreError> {
    if presented.is_empty() || presented.len() > MAX_TOKEN_LEN {
        return Ok(false);
    }
    let digest = hash(presented);
    let found = store.read(move |tx| tx.scim_token_by_hash(&digest)).await?;
    let Some((row, stored)) = found else {
        return Ok(false);
    };
    // The lookup was by hash; comparing the hashes again in constant time keeps the decision
    // itself free of early exits on secret-derived bytes.
    let same = bool::from(stored.as_slice().ct_eq(&digest[..]));
    let now = clock.unix();
    Ok(same && row.provider == provider && row.revoked_at.is_none() && row.expires_at > now)
}
