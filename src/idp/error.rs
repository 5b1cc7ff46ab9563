//! Why a call to an identity provider, or the checking of what it answered, failed. The
//! sign-in use case turns these into its own refusals (`crate::signin::IdpError`), keeping
//! the precise reason for the log.

#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("identity provider unreachable: {0}")]
    Unavailable(String),
    #[error("ID token rejected: {0}")]
    InvalidIdToken(String),
    #[error("userinfo rejected: {0}")]
    Userinfo(String),
    #[error("groups claim rejected: {0}")]
    MalformedGroups(String),
}
