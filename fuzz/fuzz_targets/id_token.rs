//! Any string as the `id_token` of a token response (security case 25: unknown `crit`, odd
//! `typ`, nested JWE, five segments, non-JSON payloads...): verification must return an error,
//! never panic. The key set and provider are fixed; the seed corpus (`fuzz/corpus/id_token`)
//! holds well-formed tokens for the mutations to start from.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use teamgate::config::Config;
use teamgate::oidc::provider::KeySet;
use teamgate::oidc::verify::{Expected, NonceCheck, id_token_offline};

const ISSUER: &str = "https://idp.example.com";

/// The public half of the key the seed tokens were signed with (fuzz/README.md).
const JWKS: &str = include_str!("../seeds/jwks.json");

struct Fixture {
    config: Config,
    keys: KeySet,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join("teamgate-fuzz");
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("secret"), "fuzz-secret").expect("secret file");
        let text = format!(
            "[server]\npublic_url = \"https://teamgate.example.com\"\n\n\
             [[provider]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"{ISSUER}\"\n\
             client_id = \"teamgate\"\nclient_secret_file = \"secret\"\n\n\
             [[team]]\nid = \"everyone\"\nroles = [{{ scope = \"org/acme\", role = \"viewer\" }}]\n"
        );
        let config = Config::parse(&text, &dir.join("teamgate.toml")).expect("fuzz config");
        let keys = KeySet::parse(JWKS.as_bytes()).expect("fuzz JWKS");
        Fixture { config, keys }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(compact) = std::str::from_utf8(data) else {
        return;
    };
    let fixture = fixture();
    let expected = Expected {
        document_issuer: ISSUER,
        provider: &fixture.config.providers[0],
        nonce: NonceCheck::Equals("fuzz-nonce"),
        access_token: None,
        skew: chrono::TimeDelta::seconds(60),
    };
    let _ = id_token_offline(compact, &fixture.keys, &expected);
});
