//! Client authentication at the token endpoint (RFC 6749 §2.3.1): `client_secret_basic` and
//! `client_secret_post`, one method per request, the secret compared in constant time; public
//! clients name themselves only.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Registered;
use super::params::Params;
use super::token::TokenError;

/// Standard base64, tolerant of missing padding: some clients strip it from Basic credentials.
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Credentials as presented, before checking.
struct Presented {
    client_id: String,
    /// `None`: a public client naming itself in the body only.
    secret: Option<String>,
}

/// Authenticate the client of a token request (RFC 6749 §2.3): `client_secret_basic`,
/// `client_secret_post`, or a public client that only names itself (RFC 6749 §2.1, PKCE
/// standing in for the secret). Returns the client's id.
pub fn authenticate(
    headers: &HeaderMap,
    params: &Params,
    lookup: impl Fn(&str) -> Option<Registered>,
) -> Result<String, TokenError> {
    let presented = presented(headers, params)?;
    let client = lookup(&presented.client_id);
    // Compare digests even for an unknown client, so timing does not tell ids apart.
    let expected = client
        .as_ref()
        .and_then(|c| c.secret_digest)
        .unwrap_or([0; 32]);
    let ok = match (&client, &presented.secret) {
        (Some(c), Some(secret)) if c.secret_digest.is_some() => {
            let digest = Sha256::digest(secret.as_bytes());
            bool::from(digest[..].ct_eq(&expected[..]))
        }
        // A public client authenticates with nothing; one sending a secret is confused.
        (Some(c), None) => c.secret_digest.is_none(),
        _ => {
            let _ = Sha256::digest(presented.secret.as_deref().unwrap_or("").as_bytes())[..]
                .ct_eq(&expected[..]);
            false
        }
    };
    if ok {
        Ok(presented.client_id)
    } else {
        Err(TokenError::InvalidClient("unknown client or wrong secret"))
    }
}

fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, TokenError> {
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(TokenError::InvalidRequest(
            "more than one Authorization header",
        ));
    }
    let body_secret = params.get("client_secret");
    let body_id = params.get("client_id");
    match header {
        Some(value) => {
            // RFC 6749 §2.3: a client uses one authentication method per request.
            if body_secret.is_some() {
                return Err(TokenError::InvalidRequest(
                    "client credentials sent both in the header and in the body",
                ));
            }
            let value = value
                .to_str()
                .map_err(|_| TokenError::InvalidClient("the Authorization header is not ASCII"))?;
            let basic = basic(value)?;
            // RFC 6749 §4.1.3 allows client_id in the body too; it must then be the same client.
            if body_id.is_some_and(|id| id != basic.client_id) {
                return Err(TokenError::InvalidClient(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            Ok(basic)
        }
        None => match (body_id, body_secret) {
            (Some(id), secret) => Ok(Presented {
                client_id: id.to_owned(),
                secret: secret.map(str::to_owned),
            }),
            (None, _) => Err(TokenError::InvalidClient("no client credentials")),
        },
    }
}

/// RFC 7617 §2 and RFC 6749 §2.3.1: base64 of `id:secret`, each part form-url-encoded first.
fn basic(value: &str) -> Result<Presented, TokenError> {
    let bad = || TokenError::InvalidClient("malformed Basic credentials");
    let (scheme, encoded) = value.split_once(' ').ok_or_else(bad)?;
    // RFC 9110 §11.1: the scheme name is case-insensitive.
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(TokenError::InvalidClient(
            "only Basic client authentication is accepted in the header",
        ));
    }
    let decoded = BASIC.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    // An encoded id cannot contain ':', so the first one separates id and secret.
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Presented {
        client_id: form_url_decode(id).ok_or_else(bad)?,
        secret: Some(form_url_decode(secret).ok_or_else(bad)?),
    })
}

/// `application/x-www-form-urlencoded` decoding of one value (HTML §4.10.21.7): `+` is a space,
/// `%XX` a byte, and the result must be UTF-8.
fn form_url_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex(bytes.next()?)?;
                let lo = hex(bytes.next()?)?;
                out.push((hi << 4) | lo);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_url_decoding_turns_plus_into_space_and_percent_escapes_into_bytes() {
        assert_eq!(
            form_url_decode("a+b%3Ac%25%2B%C3%A9").as_deref(),
            Some("a b:c%+é")
        );
        assert_eq!(form_url_decode("%4"), None);
        assert_eq!(form_url_decode("%+1"), None);
        assert_eq!(form_url_decode("%FF"), None);
    }

    #[test]
    fn basic_credentials_are_decoded_then_form_url_decoded() {
        let header = format!("bAsIc {}", BASIC.encode("teamgate%3Ademo:s%2Bc+r%3At"));
        let p = basic(&header).map_err(|e| e.to_string()).expect("parsed");
        assert_eq!(
            (
                p.client_id.as_str(),
                p.secret.as_deref().unwrap_or_default()
            ),
            ("teamgate:demo", "s+c r:t")
        );
        assert!(basic("Bearer abc").is_err());
        assert!(basic(&format!("Basic {}", BASIC.encode("no-colon"))).is_err());
    }
}
