//! Why a sign-in was refused. Each variant carries the precise reason for the log; the page
//! the browser sees (`crate::oidc::refusal`) says it in plain language, never the detail.

use crate::idp::IdpError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    #[error("identity provider unreachable: {0}")]
    IdpUnavailable(String),
    #[error("callback without a state parameter")]
    StateMissing,
    #[error(
        "callback state matches no pending login of this browser (expired, replayed or from another browser)"
    )]
    StateUnknown,
    #[error("callback parameter {0:?} repeated")]
    RepeatedParameter(String),
    #[error("callback for provider {got:?} but the login was started at {expected:?}")]
    ProviderMismatch { expected: String, got: String },
    #[error("the identity provider returned error {error:?}: {description}")]
    IdpRefused { error: String, description: String },
    #[error("authorization response issuer: {0}")]
    ResponseIssuer(String),
    #[error("callback without a code")]
    CodeMissing,
    #[error("code exchange failed: {0}")]
    TokenExchange(String),
    #[error("token response without an id_token")]
    NoIdToken,
    #[error("ID token rejected: {0}")]
    InvalidIdToken(String),
    #[error("userinfo rejected: {0}")]
    Userinfo(String),
    #[error("groups claim rejected: {0}")]
    MalformedGroups(String),
    #[error("group membership could not be resolved: {0}")]
    GroupsUnavailable(String),
    #[error("email domain not allowed: {0}")]
    DomainNotAllowed(String),
    #[error("the user's groups map to no team")]
    NoTeams,
    #[error("the account is deactivated")]
    AccountDisabled,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<IdpError> for LoginError {
    fn from(e: IdpError) -> Self {
        match e {
            IdpError::Unavailable(why) => LoginError::IdpUnavailable(why),
            IdpError::InvalidIdToken(why) => LoginError::InvalidIdToken(why),
            IdpError::Userinfo(why) => LoginError::Userinfo(why),
            IdpError::MalformedGroups(why) => LoginError::MalformedGroups(why),
        }
    }
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        LoginError::Internal(format!("login transaction: {e}"))
    }
}
