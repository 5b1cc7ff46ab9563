//! SCIM bearer tokens: `teamgate scim-token create|list|revoke PROVIDER` and the check every
//! SCIM request makes. A token is 256 random bits shown once at creation; the database keeps
//! only its SHA-256, so a lookup by hash followed by a constant-time comparison of the hashes
//! is the whole check (RFC 7644 §7.4, SECURITY.md 77). Tokens expire, can be revoked, and
//! several may be live at once so an IdP can be moved to a new token before the old one goes.

use std::fmt::Write as _;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::secret::Secret;
use crate::store::scim::tokens::{self as rows, TokenRow};
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
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
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
    let id = crate::store::random_id()
        .chars()
        .take(12)
        .collect::<String>();
    let expires_at = time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(valid_days));
    let (id_w, provider_w) = (id.clone(), provider.to_owned());
    let expires = expires_at.unix_timestamp();
    store
        .write(move |conn| {
            rows::insert(
                conn,
                &id_w,
                &provider_w,
                &digest,
                &crate::store::now(),
                expires,
                note.as_deref(),
            )
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
    Ok(store.read(move |conn| rows::list(conn, &p)).await?)
}

/// Revoke token `id` of `provider`; requests with it fail from the next one on.
pub async fn revoke(
    store: &Store,
    config: &Config,
    provider: &str,
    id: &str,
) -> Result<(), TokenError> {
    provider_of(config, provider)?;
    let (p, i) = (provider.to_owned(), id.to_owned());
    let revoked = store
        .write(move |conn| rows::revoke(conn, &p, &i, &crate::store::now()))
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
/// or a revoked one are all simply "not valid" (SECURITY.md 75, 78).
pub async fn verify(store: &Store, provider: &str, presented: &str) -> Result<bool, StoreError> {
    if presented.is_empty() || presented.len() > MAX_TOKEN_LEN {
        return Ok(false);
    }
    let digest = hash(presented);
    let found = store.read(move |conn| rows::by_hash(conn, &digest)).await?;
    let Some((row, stored)) = found else {
        return Ok(false);
    };
    // The lookup was by hash; comparing the hashes again in constant time keeps the decision
    // itself free of early exits on secret-derived bytes.
    let same = bool::from(stored.as_slice().ct_eq(&digest[..]));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(same && row.provider == provider && row.revoked_at.is_none() && row.expires_at > now)
}

/// A `scim-token` subcommand, as the CLI parses it.
#[derive(Debug, Clone)]
pub enum TokenCommand {
    Create {
        provider: String,
        /// Default [`DEFAULT_VALID_DAYS`].
        valid_days: Option<u32>,
        note: Option<String>,
    },
    List {
        provider: String,
    },
    Revoke {
        provider: String,
        id: String,
    },
}

/// Run a `scim-token` subcommand against the database of `config` and return the text to
/// print. Needs no running server; safe to run beside one (its writes queue on SQLite's lock).
pub fn run_cli(config: &Config, command: TokenCommand) -> Result<String, TokenError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(TokenError::Runtime)?;
    runtime.block_on(async {
        let store = Store::open(&config.server.database)?;
        let mut out = String::new();
        match command {
            TokenCommand::Create {
                provider,
                valid_days,
                note,
            } => {
                let t = create(&store, config, &provider, valid_days.unwrap_or(DEFAULT_VALID_DAYS), note).await?;
                let url = config.server.url(&format!("/scim/v2/{provider}"));
                let _ = writeln!(out, "SCIM token {} for provider \"{}\"", t.id, t.provider);
                let _ = writeln!(out, "  tenant URL: {url}");
                let _ = writeln!(out, "  expires:    {}", t.expires_at.date());
                let _ = writeln!(out, "  token:      {}", t.token.expose());
                let _ = writeln!(out, "Copy the token into the IdP now: it is not stored and will not be shown again.");
                if config.provider(&provider).is_some_and(|p| !p.scim_enabled) {
                    let _ = writeln!(
                        out,
                        "Note: SCIM is disabled for \"{provider}\"; set scim = {{ enabled = true }} on the provider and reload."
                    );
                }
            }
            TokenCommand::List { provider } => {
                let tokens = list(&store, config, &provider).await?;
                if tokens.is_empty() {
                    let _ = writeln!(out, "no SCIM tokens for provider \"{provider}\"");
                }
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                for t in tokens {
                    let state = match (&t.revoked_at, t.expires_at > now) {
                        (Some(at), _) => format!("revoked {at}"),
                        (None, false) => "expired".to_owned(),
                        (None, true) => "live".to_owned(),
                    };
                    let expires = time::OffsetDateTime::from_unix_timestamp(t.expires_at)
                        .map(|d| d.date().to_string())
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{}  created {}  expires {}  {}{}",
                        t.public_id,
                        t.created_at,
                        expires,
                        state,
                        t.note.map(|n| format!("  ({n})")).unwrap_or_default()
                    );
                }
            }
            TokenCommand::Revoke { provider, id } => {
                revoke(&store, config, &provider, &id).await?;
                let _ = writeln!(out, "revoked SCIM token {id} of provider \"{provider}\"");
            }
        }
        Ok(out)
    })
}
