//! Who may call `/scim/v2/{provider}/...` (security cases G): a bearer token of that provider,
//! in the `Authorization` header only. Checked by an extractor, so a handler that forgets it
//! does not compile into the router.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::domain::scim::ScimError;
use crate::provisioning::{Ctx, tokens};
use crate::state::AppState;
use crate::web::request_id::RequestId;

/// An authenticated SCIM caller.
pub struct ScimAuth {
    pub ctx: Ctx,
}

/// The provider id in `/scim/v2/{provider}/...`.
fn provider_segment(path: &str) -> Option<&str> {
    path.strip_prefix("/scim/v2/")?
        .split('/')
        .next()
        .filter(|s| !s.is_empty())
}

/// True when the query carries `access_token`, which RFC 6750 §2.3 allows and RFC 9700 §4.3.2
/// tells servers to refuse: URLs end up in logs and Referer headers (security case 76).
fn token_in_query(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .any(|(k, _)| k.eq_ignore_ascii_case("access_token"))
    })
}

impl FromRequestParts<AppState> for ScimAuth {
    type Rejection = ScimError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if token_in_query(parts.uri.query()) {
            return Err(ScimError::Unauthorized {
                detail: "tokens in the URL are refused; send Authorization: Bearer <token>",
                invalid_token: true,
            });
        }
        let config = state.config.get();
        let id = provider_segment(parts.uri.path())
            .unwrap_or_default()
            .to_owned();
        let missing = ScimError::Unauthorized {
            detail: "send Authorization: Bearer <token> (teamgate scim-token create)",
            invalid_token: false,
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(missing);
        };
        let value = value.to_str().map_err(|_| ScimError::Unauthorized {
            detail: "the Authorization header is not readable",
            invalid_token: true,
        })?;
        // RFC 6750 §2.1: the scheme is case-insensitive; a cookie or Basic credential is not a
        // SCIM credential (security case 78).
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(missing),
        };
        if token.is_empty() {
            return Err(missing);
        }
        // Authentication first: an unknown provider, a provider with SCIM disabled and a bad
        // token get the same 401, so nobody learns which provider ids exist or provision
        // without a token. The token is looked up in every case (the same work either way).
        let provider = config.provider(&id);
        let grant = tokens::verify(&state.store, &state.clock, provider, token).await?;
        let enabled = provider.is_some_and(|p| p.scim_enabled);
        let Some(grant) = grant.filter(|_| enabled) else {
            if provider.is_some() && !enabled {
                tracing::warn!(
                    provider = %id,
                    "SCIM request refused: SCIM provisioning is disabled for this provider (scim = {{ enabled = true }} enables it)"
                );
            }
            return Err(ScimError::Unauthorized {
                detail: "the token is not valid for this provider (unknown, expired or revoked)",
                invalid_token: true,
            });
        };
        if let Some(label) = parts.extensions.get::<crate::metrics::ScimLabel>() {
            label.set(&id);
        }
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        Ok(ScimAuth {
            ctx: state.provisioning.context(
                &id,
                grant.tenant.as_deref(),
                request_id,
                parts.method.as_str(),
                parts.uri.path(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_the_segment_after_scim_v2() {
        assert_eq!(provider_segment("/scim/v2/entra/Users/1"), Some("entra"));
        assert_eq!(provider_segment("/scim/v2/okta"), Some("okta"));
        assert_eq!(provider_segment("/scim/v2//Users"), None);
        assert_eq!(provider_segment("/other"), None);
    }

    #[test]
    fn an_access_token_query_parameter_is_detected_in_any_case() {
        assert!(token_in_query(Some("access_token=x")));
        assert!(token_in_query(Some("filter=a&Access_Token=x")));
        assert!(!token_in_query(Some("filter=access_token")));
        assert!(!token_in_query(None));
    }
}
