//! SCIM bearer tokens: creating, listing and revoking them (`teamgate scim-token`), and the
//! check every SCIM request makes. A token is 256 random bits shown once at creation; the database keeps
//! only its SHA-256, so a lookup by hash followed by a constant-time comparison of the hashes
//! is the whole check (RFC 7644 §7.4, security case 77). Tokens expire, can be revoked, and
//! several may be live at once so an IdP can be moved to a new token before the old one goes.
//!
//! A multi-tenant Entra provider admits several directories, and each directory's
//! provisioning job has its own token: a token of such a provider is bound to one tenant
//! (`--tenant`, required there and refused elsewhere), and everything it provisions is of that
//! tenant (security case J1).

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
    #[error(
        "provider \"{0}\" is multi-tenant: bind the token to the tenant whose provisioning job will use it, with --tenant <tenant-id> (one of allowed_tenants)"
    )]
    TenantRequired(String),
    #[error(
        "provider \"{provider}\" does not admit tenant \"{tenant}\"; use one of allowed_tenants: {allowed}"
    )]
    TenantNotAllowed {
        provider: String,
        tenant: String,
        allowed: String,
    },
    #[error(
        "provider \"{0}\" is not a multi-tenant Entra provider; --tenant applies only to tenant = \"organizations\" or \"common\""
    )]
    TenantNotApplicable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token just created: the only time its value exists outside the IdP's config.
#[derive(Debug)]
pub struct NewToken {
    pub id: String,
    pub provider: String,
    pub tenant: Option<String>,
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

/// The tenant a token of `provider` is bound to: required (and admitted) for a multi-tenant
/// provider, refused for any other.
pub fn token_tenant(
    provider: &crate::config::ProviderConfig,
    tenant: Option<&str>,
) -> Result<Option<String>, TokenError> {
    let id = provider.id.to_string();
    match (provider.is_multi_tenant(), tenant) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(TokenError::TenantNotApplicable(id)),
        (true, None) => Err(TokenError::TenantRequired(id)),
        (true, Some(t)) => match crate::domain::tenant::parse(t) {
            Some(t) if provider.admits_tenant(&t) => Ok(Some(t)),
            _ => Err(TokenError::TenantNotAllowed {
                provider: id,
                tenant: t.to_owned(),
                allowed: provider.allowed_tenants.join(", "),
            }),
        },
    }
}

/// Create a token for `provider` (bound to `tenant` for a multi-tenant provider), valid for
/// `valid_days`.
pub async fn create(
    store: &Store,
    clock: &Clock,
    config: &Config,
    provider: &str,
    tenant: Option<&str>,
    valid_days: u32,
    note: Option<String>,
) -> Result<NewToken, TokenError> {
    let tenant = token_tenant(provider_of(config, provider)?, tenant)?;
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
    let tenant_w = tenant.clone();
    let expires = expires_at.unix_timestamp();
    store
        .write(move |tx| {
            tx.insert_scim_token(&TokenToStore {
                public_id: &id_w,
                provider: &provider_w,
                tenant: tenant_w.as_deref(),
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
        tenant,
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

/// What a valid token opens: its provider's resources of one tenant (or of no tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub tenant: Option<String>,
}

/// The grant of `presented` when it is a live token of `provider`. A token of another
/// provider, an expired or a revoked one are all simply "not valid" (security cases 75, 78),
/// and so is a token whose tenant binding no longer fits the provider (a tenant-less token of
/// a provider made multi-tenant since, a tenant dropped from `allowed_tenants`: J1).
pub async fn verify(
    store: &Store,
    clock: &Clock,
    provider: Option<&crate::config::ProviderConfig>,
    presented: &str,
) -> Result<Option<TokenGrant>, StoreError> {
    if presented.is_empty() || presented.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let digest = hash(presented);
    let found = store.read(move |tx| tx.scim_token_by_hash(&digest)).await?;
    let Some((row, stored)) = found else {
        return Ok(None);
    };
    // The lookup was by hash; comparing the hashes again in constant time keeps the decision
    // itself free of early exits on secret-derived bytes.
    let same = bool::from(stored.as_slice().ct_eq(&digest[..]));
    let now = clock.unix();
    // An unknown provider is looked up all the same: its 401 costs what any other does.
    let Some(provider) = provider else {
        return Ok(None);
    };
    if !(same
        && row.provider == provider.id.as_str()
        && row.revoked_at.is_none()
        && row.expires_at > now)
    {
        return Ok(None);
    }
    let fits = match (&row.tenant, provider.is_multi_tenant()) {
        (None, false) => true,
        (Some(t), true) => provider.admits_tenant(t),
        _ => false,
    };
    if !fits {
        tracing::warn!(
            provider = %provider.id,
            token = %row.public_id,
            tenant = row.tenant.as_deref().unwrap_or("none"),
            "SCIM token refused: its tenant binding does not fit the provider (a multi-tenant provider needs a token made with --tenant for an allowed tenant); create a new one"
        );
        return Ok(None);
    }
    Ok(Some(TokenGrant { tenant: row.tenant }))
}
