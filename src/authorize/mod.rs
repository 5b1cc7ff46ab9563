//! The provider use case: teamgate signs users in to applications (OpenID Connect clients).
//! For a signed-in user it decides whether a client may have them (`allowed_teams`), issues
//! authorization codes, redeems them once for tokens, rotates refresh tokens, answers userinfo,
//! and revokes. It knows no HTTP: the adapter ([`crate::provider`]) parses requests, checks
//! the client's credentials and signs the ID token.
//!
//! Storage: codes, access tokens and refresh tokens are in the database, hashed (SHA-256), in
//! a grant that belongs to the teamgate session it was made in. Revocation is therefore a
//! property of the schema: ending the session (sign-out, expiry, deprovisioning, "sign out
//! everywhere", which bumps the generation and deletes the rows) deletes its grants and their
//! tokens, and survives restarts. A replayed code or refresh token deletes its grant
//! (RFC 6749 §4.1.2, RFC 9700 §4.14.2).
//!
//! - [`claims`]: what a client learns about a user, `allowed_teams`, `explain`.
//! - [`tokens`]: the write transactions (issue, redeem, refresh) and userinfo.

pub mod claims;
pub mod tokens;

use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use claims::{UserClaims, allowed, explain, granted_scopes, user_claims};
pub use tokens::{CodeRequest, Issued, SignedInUser};

use crate::config::LiveConfig;
use crate::domain::Clock;
use crate::store::grants::ClientUsage;
use crate::store::{Store, StoreError};

/// An authorization code lives one minute (RFC 6749 §4.1.2 says ten at most); clients redeem
/// it within milliseconds.
pub const CODE_TTL_SECS: i64 = 60;
/// Access tokens (for userinfo) are short: clients refresh, and every refresh re-checks the
/// user, their session and `allowed_teams`.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 300;
/// ID tokens are for the sign-in that is happening now; also bounds how long a retired signing
/// key must stay published ([`crate::signing::MAX_ASSERTION_TTL`]).
pub const ID_TOKEN_TTL_SECS: i64 = 300;

/// Why an authorization request cannot be granted for the signed-in user.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("the client {0:?} is not registered")]
    UnknownClient(String),
    #[error("{user} is not in any team allowed to sign in to {client}")]
    NotAllowed { user: String, client: String },
    /// The session or user stopped being valid between the check and the write.
    #[error("the session is no longer valid")]
    SessionGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a token request is refused: RFC 6749 §5.2 `invalid_grant` in every case but `Store`.
/// The text is for the log; the client gets the short description of [`TokenRefusal::public`].
#[derive(Debug, thiserror::Error)]
pub enum TokenRefusal {
    #[error("unknown or expired code")]
    UnknownCode,
    #[error("code already used: the grant and its tokens are revoked")]
    CodeReplayed,
    #[error("the code was issued to another client")]
    OtherClient,
    #[error("redirect_uri differs from the authorization request")]
    RedirectMismatch,
    #[error("the code was bound to a code_challenge and no valid code_verifier was sent")]
    VerifierMissing,
    #[error("the code_verifier does not match the code_challenge")]
    VerifierMismatch,
    #[error("a code_verifier was sent for a code issued without a code_challenge")]
    VerifierUnexpected,
    #[error("unknown, expired or revoked refresh token")]
    UnknownRefresh,
    #[error("refresh token already used: the grant and its tokens are revoked")]
    RefreshReplayed,
    #[error("the user's session ended or the user was deactivated")]
    UserGone,
    #[error("the user is no longer in a team allowed to use this client")]
    NotAllowed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenRefusal {
    /// The `error_description` sent to the client: plain ASCII, nothing internal.
    pub fn public(&self) -> &'static str {
        match self {
            TokenRefusal::UnknownCode => "the code is unknown or expired",
            TokenRefusal::CodeReplayed => "the code was already used",
            TokenRefusal::OtherClient => "the code was issued to another client",
            TokenRefusal::RedirectMismatch => "redirect_uri differs from the authorization request",
            TokenRefusal::VerifierMissing => "a valid code_verifier is required",
            TokenRefusal::VerifierMismatch => "the code_verifier does not match the code_challenge",
            TokenRefusal::VerifierUnexpected => {
                "code_verifier sent but the authorization request had no code_challenge"
            }
            TokenRefusal::UnknownRefresh => "the refresh token is unknown, expired or revoked",
            TokenRefusal::RefreshReplayed => "the refresh token was already used",
            TokenRefusal::UserGone => "the user's session has ended",
            TokenRefusal::NotAllowed => "the user may no longer use this client",
            TokenRefusal::Store(_) => "server error",
        }
    }
}

/// Error used by the userinfo read.
#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    #[error("unknown, expired or revoked access token")]
    InvalidToken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// SHA-256 of a code or token: what the database keys them by.
pub fn hash_token(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The provider use case and what it works with; cheap to clone.
#[derive(Clone)]
pub struct Authorize {
    pub store: Store,
    pub config: Arc<LiveConfig>,
    pub clock: Clock,
}

impl Authorize {
    /// Per client: last use, live refresh tokens, users (the admin pages).
    pub async fn usage(&self) -> Result<Vec<ClientUsage>, StoreError> {
        let now = self.clock.unix();
        self.store.read(move |tx| tx.client_usage(now)).await
    }

    /// Delete grants and tokens past their lifetime; how many grants.
    pub async fn prune(&self) -> Result<usize, StoreError> {
        let now = self.clock.unix();
        self.store
            .write(move |tx| tx.delete_expired_grants(now))
            .await
    }
}
