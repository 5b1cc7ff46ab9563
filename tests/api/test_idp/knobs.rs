//! How the test IdP can be told to misbehave. `Knobs::default()` is an honest, strict OpenID
//! provider; each field bends one thing, named after the security cases it serves. Changes
//! apply to every request that arrives after `TestIdp::with_knobs` returns.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};

/// The IdP's HTTP endpoints, for per-endpoint faults and call counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `{issuer}/.well-known/openid-configuration`
    Discovery,
    Authorize,
    Token,
    Jwks,
    Userinfo,
    /// Both Microsoft Graph calls: `checkMemberGroups` and `transitiveMemberOf`.
    Graph,
    /// Okta's `GET /api/v1/users/{id}/groups`.
    OktaGroups,
    /// The retired AAD Graph URL that overage tokens name in `_claim_sources` (IdP quirk E4:
    /// a client must build a Microsoft Graph URL instead, so any call here is a bug).
    LegacyGraph,
    /// `TestIdp::moved_jwks_url()`: serves the JWKS too, and is where a test redirects the
    /// JWKS endpoint to (security case 45: the client must not follow, so its count stays 0).
    MovedJwks,
}

impl Endpoint {
    pub const ALL: [Endpoint; 9] = [
        Endpoint::Discovery,
        Endpoint::Authorize,
        Endpoint::Token,
        Endpoint::Jwks,
        Endpoint::Userinfo,
        Endpoint::Graph,
        Endpoint::OktaGroups,
        Endpoint::LegacyGraph,
        Endpoint::MovedJwks,
    ];
}

/// A fault injected into one endpoint. Several may combine: the delay comes first, then the
/// first of redirect, status, raw body that is set; `pad_to` bends an otherwise normal answer.
#[derive(Clone, Debug, Default)]
pub struct Fault {
    /// Wait this long before answering (timeouts, security case 82).
    pub delay: Option<Duration>,
    /// Answer `302 Found` with this `Location` (security case 45).
    pub redirect_to: Option<String>,
    /// Answer this status with a small error body in the endpoint's own dialect.
    pub status: Option<u16>,
    /// Answer 200 with this body verbatim (`application/json`), e.g. truncated JSON.
    pub raw_body: Option<String>,
    /// Pad the normal JSON answer with trailing whitespace (still valid JSON) to this many
    /// bytes: the huge-body case (security case 82, "bodies size-capped").
    pub pad_to: Option<usize>,
    /// Apply only to this many more calls, then clear; `None` = until changed.
    pub times: Option<usize>,
}

/// The JWS `alg` the ID token is signed with (RFC 7518 §3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Alg {
    #[default]
    Rs256,
    /// Signed with the P-256 key; publish it with `jwks_ec_key` for the token to verify.
    Es256,
    /// Algorithm confusion (security case 23): HMAC-SHA-256 keyed with the current RSA public
    /// key's SubjectPublicKeyInfo PEM, as an attacker holding only the JWKS could make.
    Hs256WithRsaPublicKey,
    /// `alg: none` and an empty signature (security case 9).
    None,
}

/// The JWS header's `kid`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Kid {
    /// The kid of the published key of the signing algorithm's family (RSA current key, or the
    /// EC key), even when `sign_with_rogue_key` signs with another key.
    #[default]
    Published,
    /// No `kid` header at all (security cases 6-7).
    Omit,
    /// This value, e.g. one no JWKS contains (security case 79).
    Fixed(String),
}

/// What the token endpoint returns as `id_token`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenShape {
    /// A compact JWS: three segments.
    #[default]
    Jws,
    /// Five segments, shaped like a JWE (a nested or encrypted token; security case 25).
    FiveSegments,
    /// A correctly signed JWS whose payload is not JSON (security case 25).
    NonJsonPayload,
}

/// The RFC 9207 `iss` parameter of authorization responses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum IssParam {
    /// The issuer from the discovery document (RFC 9207 §2).
    #[default]
    Correct,
    /// Left out (security case 37).
    Omit,
    /// The correct issuer plus a trailing `/`: must be compared as a plain string (36).
    TrailingSlash,
    /// This value (security cases 36, 38).
    Custom(String),
}

/// Client authentication the token endpoint accepts (OIDC Core §9, RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenAuth {
    /// `client_secret_basic` or `client_secret_post` (never both in one request).
    #[default]
    BasicOrPost,
    /// Only HTTP Basic (security case 14); discovery then advertises only that.
    BasicOnly,
    /// Only credentials in the form body.
    PostOnly,
}

/// Where the user's `groups` are released.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupsPlacement {
    /// In the ID token and in userinfo.
    #[default]
    Both,
    /// Only in the ID token (Okta's org authorization server, IdP quirk O1).
    IdTokenOnly,
    /// Only in userinfo (Okta custom server default, IdP quirk O2).
    UserinfoOnly,
}

/// Everything the IdP can be told to do differently. `pub` fields; the methods are shortcuts.
#[derive(Clone, Debug)]
pub struct Knobs {
    // ---- ID-token claims (applied after the user's claims, in this order) ----
    /// Claims set verbatim (`iss`, `sub`, `aud` as string or array, `azp`, `exp`, `iat`,
    /// `nonce`, `at_hash`, `email_verified`, ...). Use `unix_now()` for times.
    pub id_token_set: Map<String, Value>,
    /// Claims removed (security cases 3, 4, 5, 22).
    pub id_token_remove: Vec<String>,

    // ---- JOSE header and signature ----
    pub alg: Alg,
    pub kid: Kid,
    /// Sign with a pool key that the JWKS does not publish (security cases 10, 79).
    pub sign_with_rogue_key: bool,
    /// Flip bits in the signature (security case 10).
    pub corrupt_signature: bool,
    /// Header members set verbatim after `alg`/`typ`/`kid` (`crit`, `typ`, even `alg`).
    pub header_set: Map<String, Value>,
    pub header_remove: Vec<String>,
    pub shape: TokenShape,

    // ---- token endpoint ----
    pub token_auth: TokenAuth,
    /// Also return a `refresh_token` (security case 26, IdP quirk E7).
    pub issue_refresh_token: bool,
    /// Token-response members set verbatim (`id_token` itself, `token_type`, ...).
    pub token_response_set: Map<String, Value>,
    /// Token-response members left out; `"id_token"` is security case 40.
    pub token_response_remove: Vec<String>,

    // ---- authorization endpoint ----
    /// Redirect back with this `error` (e.g. `access_denied`) and the state (security case 40).
    pub authorize_error: Option<String>,
    pub iss_param: IssParam,
    /// Appended to the redirect back, after the normal ones; repeats allowed (security case 39).
    pub authorize_extra_params: Vec<(String, String)>,
    /// Normal parameters left out of the redirect back (`state`, `code`).
    pub authorize_drop_params: Vec<String>,

    // ---- discovery ----
    /// The `issuer` the discovery document claims (security case 16).
    pub discovery_issuer: Option<String>,
    /// RFC 9207 §3 `authorization_response_iss_parameter_supported`; `None` leaves it out.
    pub iss_parameter_supported: Option<bool>,
    pub discovery_set: Map<String, Value>,
    pub discovery_remove: Vec<String>,

    // ---- JWKS ----
    /// After `rotate_key`, keep publishing the previous key beside the new one.
    pub jwks_keep_previous: bool,
    /// Publish the keys without `kid` (security cases 6-7).
    pub jwks_omit_kid: bool,
    /// Also publish the rogue key under the current key's kid (security case 24).
    pub jwks_duplicate_kid: bool,
    /// Also publish the rogue key, with `use: enc` (security case 24); its kid is `rogue_kid()`.
    pub jwks_enc_key: bool,
    /// Also publish the P-256 key.
    pub jwks_ec_key: bool,
    /// Publish the current RSA key with `alg: ES256` (kty/alg mismatch, security case 24).
    pub jwks_alg_mismatch: bool,
    /// Put unusable entries (bad base64, no `kty`, unknown `kty`, a symmetric key) in front
    /// of the good keys (security case 81).
    pub jwks_malformed_entries: bool,
    /// Serve `{"keys": []}` (security case 81).
    pub jwks_empty: bool,
    /// Entra's per-key `issuer` member (IdP quirk E9), when set.
    pub jwks_key_issuer: Option<String>,

    // ---- userinfo ----
    pub groups_placement: GroupsPlacement,
    /// Userinfo members set verbatim, e.g. another `sub` (security case 11).
    pub userinfo_set: Map<String, Value>,
    pub userinfo_remove: Vec<String>,

    // ---- directory APIs ----
    /// Most objects per Graph `transitiveMemberOf` page, whatever `$top` asks (Graph: 100 by
    /// default, 999 at most).
    pub graph_page_size_cap: usize,
    /// Most groups per Okta Groups API page, whatever `limit` asks.
    pub okta_page_size_cap: usize,

    // ---- faults ----
    pub faults: HashMap<Endpoint, Fault>,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            id_token_set: Map::new(),
            id_token_remove: Vec::new(),
            alg: Alg::default(),
            kid: Kid::default(),
            sign_with_rogue_key: false,
            corrupt_signature: false,
            header_set: Map::new(),
            header_remove: Vec::new(),
            shape: TokenShape::default(),
            token_auth: TokenAuth::default(),
            issue_refresh_token: false,
            token_response_set: Map::new(),
            token_response_remove: Vec::new(),
            authorize_error: None,
            iss_param: IssParam::default(),
            authorize_extra_params: Vec::new(),
            authorize_drop_params: Vec::new(),
            discovery_issuer: None,
            iss_parameter_supported: Some(true),
            discovery_set: Map::new(),
            discovery_remove: Vec::new(),
            jwks_keep_previous: true,
            jwks_omit_kid: false,
            jwks_duplicate_kid: false,
            jwks_enc_key: false,
            jwks_ec_key: false,
            jwks_alg_mismatch: false,
            jwks_malformed_entries: false,
            jwks_empty: false,
            jwks_key_issuer: None,
            groups_placement: GroupsPlacement::default(),
            userinfo_set: Map::new(),
            userinfo_remove: Vec::new(),
            graph_page_size_cap: 999,
            okta_page_size_cap: 200,
            faults: HashMap::new(),
        }
    }
}

impl Knobs {
    /// Set an ID-token claim verbatim.
    pub fn set_claim(&mut self, name: &str, value: Value) -> &mut Self {
        self.id_token_remove.retain(|n| n != name);
        self.id_token_set.insert(name.to_owned(), value);
        self
    }

    /// Leave a claim out of the ID token.
    pub fn remove_claim(&mut self, name: &str) -> &mut Self {
        self.id_token_set.remove(name);
        self.id_token_remove.push(name.to_owned());
        self
    }

    /// The fault of `endpoint`, created empty if there was none.
    pub fn fault(&mut self, endpoint: Endpoint) -> &mut Fault {
        self.faults.entry(endpoint).or_default()
    }

    /// `endpoint` answers `status` until changed.
    pub fn fail(&mut self, endpoint: Endpoint, status: u16) -> &mut Self {
        self.fault(endpoint).status = Some(status);
        self
    }

    /// `endpoint` answers after `delay`.
    pub fn delay(&mut self, endpoint: Endpoint, delay: Duration) -> &mut Self {
        self.fault(endpoint).delay = Some(delay);
        self
    }

    /// `endpoint` answers `302 Found` to `location`.
    pub fn redirect(&mut self, endpoint: Endpoint, location: &str) -> &mut Self {
        self.fault(endpoint).redirect_to = Some(location.to_owned());
        self
    }

    /// `endpoint` answers a valid body padded to `bytes`.
    pub fn huge_body(&mut self, endpoint: Endpoint, bytes: usize) -> &mut Self {
        self.fault(endpoint).pad_to = Some(bytes);
        self
    }

    /// No `kid` in the token header nor in the JWKS (security case 6; with a second key
    /// published, e.g. after `rotate_key`, security case 7).
    pub fn omit_kids(&mut self) -> &mut Self {
        self.kid = Kid::Omit;
        self.jwks_omit_kid = true;
        self
    }

    /// Every fault removed: the endpoints answer normally again.
    pub fn clear_faults(&mut self) -> &mut Self {
        self.faults.clear();
        self
    }
}
