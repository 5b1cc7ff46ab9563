//! Why a login was refused. Each variant carries the precise reason for the log; the user sees
//! the plain-language title and explanation from [`LoginError::user_message`], never the
//! internal detail.

use axum::http::StatusCode;

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

impl LoginError {
    pub fn status(&self) -> StatusCode {
        use LoginError::*;
        match self {
            UnknownProvider(_) => StatusCode::NOT_FOUND,
            IdpUnavailable(_) | GroupsUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            StateMissing
            | StateUnknown
            | RepeatedParameter(_)
            | ProviderMismatch { .. }
            | ResponseIssuer(_)
            | CodeMissing
            | TokenExchange(_)
            | NoIdToken
            | InvalidIdToken(_)
            | Userinfo(_)
            | MalformedGroups(_) => StatusCode::BAD_REQUEST,
            IdpRefused { .. } | DomainNotAllowed(_) | NoTeams | AccountDisabled => {
                StatusCode::FORBIDDEN
            }
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// (title, explanation) for the error page, in plain language.
    pub fn user_message(&self) -> (&'static str, String) {
        use LoginError::*;
        match self {
            UnknownProvider(_) => ("Unknown sign-in method", "This sign-in method does not exist. Start again from the sign-in page.".into()),
            IdpUnavailable(_) => ("Identity provider unreachable", "teamgate could not reach your identity provider. Try again in a few minutes; if it keeps happening, tell your administrator.".into()),
            StateMissing | StateUnknown => ("Sign-in expired", "This sign-in attempt is no longer valid: it expired, was already used, or was started in another browser. Start again from the sign-in page.".into()),
            RepeatedParameter(_) | CodeMissing | ProviderMismatch { .. } | ResponseIssuer(_) => ("Sign-in response refused", "The answer from the identity provider was not valid, so you were not signed in. Start again from the sign-in page.".into()),
            IdpRefused { error, .. } if error == "access_denied" => ("Sign-in cancelled", "The identity provider did not sign you in (access denied). Start again if this was a mistake.".into()),
            IdpRefused { .. } => ("Sign-in refused", "The identity provider reported an error and did not sign you in.".into()),
            TokenExchange(_) | NoIdToken | InvalidIdToken(_) | Userinfo(_) => ("Sign-in could not be verified", "teamgate could not verify the identity provider's answer, so you were not signed in. Start again; if it keeps happening, tell your administrator.".into()),
            MalformedGroups(_) => ("Group membership unreadable", "Your identity provider sent group information in a form teamgate cannot read. Tell your administrator.".into()),
            GroupsUnavailable(_) => ("Group membership unavailable", "teamgate could not find out which groups you are in right now, so it did not sign you in. Try again in a few minutes.".into()),
            DomainNotAllowed(_) => ("Email domain not allowed", "Your account's email domain is not allowed to sign in here (or your email address is not verified).".into()),
            NoTeams => ("No access", "You signed in, but none of your groups gives access to any team here. Ask your administrator to add you to a mapped group.".into()),
            AccountDisabled => ("Account disabled", "Your account is deactivated here. Ask your administrator.".into()),
            Internal(_) => ("Something went wrong", "teamgate hit an internal error. Try again; if it keeps happening, give your administrator the request id below.".into()),
        }
    }
}
