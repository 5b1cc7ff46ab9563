//! `teamgate scim-token create|list|revoke PROVIDER`: the command-line face of
//! [`crate::provisioning::tokens`]. Needs no running server; safe to run beside one (its
//! writes queue on the database's lock).

use std::fmt::Write as _;

use crate::config::Config;
use crate::domain::Clock;
use crate::provisioning::tokens::{DEFAULT_VALID_DAYS, TokenError, create, list, revoke};
use crate::store::Store;

/// Why a `scim-token` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A `scim-token` subcommand, as the CLI parses it.
#[derive(Debug, Clone)]
pub enum TokenCommand {
    Create {
        provider: String,
        /// Default [`DEFAULT_VALID_DAYS`].
        valid_days: Option<u32>,
        note: Option<String>,
        /// The tenant of a multi-tenant provider the token is bound to.
        tenant: Option<String>,
    },
    List {
        provider: String,
    },
    Revoke {
        provider: String,
        id: String,
    },
}

/// Run a `scim-token` subcommand against the database of `config` and return the text to
/// print.
pub fn run_cli(config: &Config, command: TokenCommand) -> Result<String, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let clock = Clock::system();
    runtime.block_on(async {
        let store = Store::open_database(&config.server.database)
            .await
            .map_err(TokenError::from)?;
        let mut out = String::new();
        match command {
            TokenCommand::Create {
                provider,
                valid_days,
                note,
                tenant,
            } => {
                let t = create(&store, &clock, config, &provider, tenant.as_deref(), valid_days.unwrap_or(DEFAULT_VALID_DAYS), note).await?;
                let url = config.server.url(&format!("/scim/v2/{provider}"));
                let _ = writeln!(out, "SCIM token {} for provider \"{}\"", t.id, t.provider);
                if let Some(tenant) = &t.tenant {
                    let _ = writeln!(out, "  for tenant: {tenant} (it sees and provisions only this tenant's users and groups)");
                }
                let _ = writeln!(out, "  tenant URL: {url}");
                let _ = writeln!(out, "  expires:    {}", t.expires_at.date());
                let _ = writeln!(out, "  token:      {}", t.token.expose());
                let _ = writeln!(out, "Copy the token into the IdP now: it is not stored and will not be shown again.");
                if config.provider(&provider).is_some_and(|p| !p.scim_enabled) {
                    let _ = writeln!(
                        out,
                        "Note: SCIM is disabled for \"{provider}\"; set scim = {{ enabled = true }} on the provider and reload."
                    );
                }
            }
            TokenCommand::List { provider } => {
                let tokens = list(&store, config, &provider).await?;
                if tokens.is_empty() {
                    let _ = writeln!(out, "no SCIM tokens for provider \"{provider}\"");
                }
                let now = clock.unix();
                for t in tokens {
                    let state = match (&t.revoked_at, t.expires_at > now) {
                        (Some(at), _) => format!("revoked {at}"),
                        (None, false) => "expired".to_owned(),
                        (None, true) => "live".to_owned(),
                    };
                    let expires = time::OffsetDateTime::from_unix_timestamp(t.expires_at)
                        .map(|d| d.date().to_string())
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{}  created {}  expires {}  {}{}{}",
                        t.public_id,
                        t.created_at,
                        expires,
                        state,
                        t.tenant.map(|t| format!("  tenant {t}")).unwrap_or_default(),
                        t.note.map(|n| format!("  ({n})")).unwrap_or_default()
                    );
                }
            }
            TokenCommand::Revoke { provider, id } => {
                revoke(&store, &clock, config, &provider, &id).await?;
                let _ = writeln!(out, "revoked SCIM token {id} of provider \"{provider}\"");
            }
        }
        Ok::<_, CliError>(out)
    })
}
