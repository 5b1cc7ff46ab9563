//! How a refused sign-in is answered: its HTTP status and the plain-language page the browser
//! sees (the precise reason only goes to the log).

use axum::http::StatusCode;

use crate::signin::LoginError;

/// How a refused sign-in is answered: the status and the plain-language page.
pub trait Refusal {
    fn status(&self) -> StatusCode;
    /// (title, explanation) for the error page, in plain language.
    fn user_message(&self) -> (&'static str, String);
}

impl Refusal for LoginError {
    fn status(&self) -> StatusCode {
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

    fn user_message(&self) -> (&'static str, String) {
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
