//! `[[client]]`: the applications that sign in through teamgate as an OpenID provider. Ids are
//! unique, a client is either confidential (exactly one of `secret_env`/`secret_file`) or
//! `public = true`, redirect URIs are absolute, fragment-free and compared exactly (so no
//! wildcard is possible), `allowed_teams` name declared teams, `claims` name known claims.

use std::collections::BTreeSet;
use std::path::Path;

use url::Url;

use super::{Validator, is_loopback_host};
use crate::config::raw::{RawClient, S};
use crate::config::{ClientClaim, ClientConfig, SigningAlg};
use crate::domain::TeamId;
use crate::domain::secret::Secret;

/// RFC 6749 §2.2 allows any printable ASCII; teamgate keeps ids URL- and log-friendly.
fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A redirect URI a client may register: absolute, https (http only on a loopback host,
/// RFC 8252 §7.3 and RFC 9700 §2.1), no fragment (RFC 6749 §3.1.2), no user info.
fn check_redirect_uri(s: &str) -> Result<String, String> {
    let url = Url::parse(s).map_err(|e| format!("\"{s}\" is not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(format!(
                "\"{s}\" must be https (plain http is allowed only on localhost, 127.0.0.1 or ::1)"
            ));
        }
        other => {
            return Err(format!(
                "\"{s}\" has scheme {other}; only https (or http on loopback) is supported"
            ));
        }
    }
    if url.host().is_none() {
        return Err(format!("\"{s}\" has no host"));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "\"{s}\" has a fragment (#...); redirect URIs must not (RFC 6749 §3.1.2)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("\"{s}\" contains user info; remove it"));
    }
    if s.contains('*') {
        return Err(format!(
            "\"{s}\" contains '*': redirect URIs are compared exactly, list each one"
        ));
    }
    // Kept as written: the authorization request must repeat it byte for byte.
    Ok(s.to_owned())
}

impl Validator<'_> {
    pub(super) fn clients(
        &mut self,
        raws: &[S<RawClient>],
        teams: &BTreeSet<TeamId>,
        assertion_audience: &str,
    ) -> Vec<ClientConfig> {
        let mut out: Vec<ClientConfig> = Vec::new();
        for sc in raws {
            let line = self.line_of(&sc.span());
            let c = sc.get_ref();
            let id = c.id.get_ref().clone();
            if !valid_client_id(&id) {
                self.err(&c.id, format!("client.id \"{id}\" is not valid; use 1 to 64 letters, digits, '-', '_' or '.'"));
                continue;
            }
            if out.iter().any(|o| o.id == id) {
                self.err(
                    &c.id,
                    format!("client id \"{id}\" is used twice; give each [[client]] its own id"),
                );
                continue;
            }
            if id == assertion_audience {
                self.err(&c.id, format!("client id \"{id}\" equals the forward-auth assertion audience; pick another id so that an assertion can never pass for an ID token"));
            }
            let before = self.errors.len();
            let secret = self.client_secret(c, &id, line);
            let mut redirect_uris = Vec::new();
            for uri in &c.redirect_uris {
                if let Some(u) = self.parse_with(uri, "client.redirect_uris", check_redirect_uri) {
                    if redirect_uris.contains(&u) {
                        self.err(
                            uri,
                            format!("client \"{id}\": redirect URI {u} is listed twice"),
                        );
                    } else {
                        redirect_uris.push(u);
                    }
                }
            }
            if c.redirect_uris.is_empty() {
                self.push(line, format!("client \"{id}\": redirect_uris is missing or empty; list the exact callback URL(s) of the application, e.g. redirect_uris = [\"https://grafana.example.com/login/generic_oauth\"]"));
            }
            let mut post_logout = Vec::new();
            for uri in &c.post_logout_redirect_uris {
                if let Some(u) =
                    self.parse_with(uri, "client.post_logout_redirect_uris", check_redirect_uri)
                {
                    post_logout.push(u);
                }
            }
            let mut allowed_teams = Vec::new();
            for t in &c.allowed_teams {
                let Some(team) = self.parse_with(t, "client.allowed_teams", TeamId::parse) else {
                    continue;
                };
                if !teams.contains(&team) {
                    self.err(t, format!("client \"{id}\": allowed team \"{team}\" is not a declared [[team]]; fix the id or declare the team"));
                } else if !allowed_teams.contains(&team) {
                    allowed_teams.push(team);
                }
            }
            let claims = match &c.claims {
                None => ClientClaim::ALL.into_iter().collect(),
                Some(list) => {
                    let mut set = BTreeSet::new();
                    for k in list {
                        match ClientClaim::parse(k.get_ref()) {
                            Some(claim) => {
                                set.insert(claim);
                            }
                            None => self.err(k, format!("client \"{id}\": claim \"{}\" is unknown; use email, name, teams, roles or groups (sub is always sent)", k.get_ref())),
                        }
                    }
                    set
                }
            };
            let id_token_alg = match c.id_token_alg.as_ref().map(|a| (a, a.get_ref().as_str())) {
                None | Some((_, "RS256")) => SigningAlg::Rs256,
                Some((_, "ES256")) => SigningAlg::Es256,
                Some((at, other)) => {
                    self.err(at, format!("client \"{id}\": id_token_alg \"{other}\" is not supported; use RS256 (the default, which every OpenID library accepts) or ES256"));
                    SigningAlg::Rs256
                }
            };
            if self.errors.len() > before {
                continue;
            }
            out.push(ClientConfig {
                name: c.name.clone().unwrap_or_else(|| id.clone()),
                id,
                public: c.public,
                secret,
                redirect_uris,
                post_logout_redirect_uris: post_logout,
                allowed_teams,
                claims,
                id_token_alg,
                line,
            });
        }
        out
    }

    /// A confidential client's secret (from an env var or a file beside the config), or
    /// nothing for `public = true`; any other combination is an error.
    fn client_secret(&mut self, c: &RawClient, id: &str, line: usize) -> Option<Secret> {
        match (c.public, &c.secret_env, &c.secret_file) {
            (true, None, None) => None,
            (true, Some(at), _) | (true, None, Some(at)) => {
                self.err(at, format!("client \"{id}\": a public client has no secret; remove secret_env/secret_file or public = true"));
                None
            }
            (false, Some(_), Some(f)) => {
                self.err(
                    f,
                    format!("client \"{id}\": set secret_env or secret_file, not both"),
                );
                None
            }
            (false, Some(env), None) => match std::env::var(env.get_ref()) {
                Ok(v) if v.len() >= 16 => Some(Secret::new(v)),
                Ok(v) if !v.is_empty() => {
                    self.err(env, format!("client \"{id}\": the secret in {} is shorter than 16 characters; generate one with `openssl rand -base64 32`", env.get_ref()));
                    None
                }
                _ => {
                    self.err(env, format!("client \"{id}\": the environment variable {} is not set or empty; export the client secret in it", env.get_ref()));
                    None
                }
            },
            (false, None, Some(file)) => {
                let path = self
                    .file
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join(file.get_ref());
                match std::fs::read_to_string(&path) {
                    // RFC 6749 §10.10 asks for secrets an attacker cannot guess.
                    Ok(v) if v.trim().len() >= 16 => Some(Secret::new(v.trim().to_owned())),
                    Ok(_) => {
                        self.err(file, format!("client \"{id}\": the secret in {} is empty or shorter than 16 characters; generate one with `openssl rand -base64 32`", path.display()));
                        None
                    }
                    Err(e) => {
                        self.err(
                            file,
                            format!(
                                "client \"{id}\": cannot read the secret file {}: {e}",
                                path.display()
                            ),
                        );
                        None
                    }
                }
            }
            (false, None, None) => {
                self.push(line, format!("client \"{id}\": no secret; set secret_env = \"VAR\" or secret_file = \"path\" (secrets never go in this file), or public = true for a PKCE-only app"));
                None
            }
        }
    }
}
