//! What the demo IdP publishes about itself: the discovery document (OpenID Connect Discovery
//! 1.0 §3, plus RFC 8414 and RFC 9207 fields) and the JWK Set (RFC 7517 §5).

use serde_json::{Value, json};

use super::DemoIdp;
use super::tokens::{CLAIMS, SUPPORTED_SCOPES};

impl DemoIdp {
    pub(super) fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoints.authorization,
            "token_endpoint": self.endpoints.token,
            "userinfo_endpoint": self.endpoints.userinfo,
            "jwks_uri": self.endpoints.jwks,
            "scopes_supported": SUPPORTED_SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": CLAIMS,
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            // Discovery §3: this one defaults to true, so it must be said.
            "request_uri_parameter_supported": false,
            "authorization_response_iss_parameter_supported": true,
        })
    }

    pub(super) fn jwks(&self) -> Value {
        json!({ "keys": [self.key.jwk()] })
    }
}
