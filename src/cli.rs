//! The `teamgate` command line: parse arguments, run the command, print errors plainly and
//! exit non-zero. Every command reads the config given by `--config`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::Application;
use crate::config::{Config, ConfigErrors};

#[derive(Parser)]
#[command(
    name = "teamgate",
    version,
    about = "Self-hosted login broker: OIDC and SCIM in, teams and roles out"
)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, default_value = "config/teamgate.toml")]
    pub config: PathBuf,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Listen here instead of server.listen (replicas sharing one config file on one host).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a config file and print a summary; exits 1 listing every error.
    CheckConfig {
        /// The file to check (default: --config).
        file: Option<PathBuf>,
    },
    #[command(flatten)]
    Admin(crate::admin::cli::AdminCommand),
    /// Copy everything from a SQLite database into a new PostgreSQL database and verify the
    /// row counts (stop the server first). The password comes from --password-env or
    /// --password-file, never the URL.
    MigrateDb {
        /// The SQLite file (e.g. data/teamgate.db).
        #[arg(long)]
        from: PathBuf,
        /// postgres://USER@HOST:PORT/DBNAME?sslmode=... (an empty database).
        #[arg(long)]
        to: String,
        /// An environment variable holding the PostgreSQL password.
        #[arg(long)]
        password_env: Option<String>,
        /// A file holding the PostgreSQL password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Manage teamgate's own assertion signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Manage the SCIM bearer tokens of a provider (stored hashed; a new one is printed once).
    ScimToken {
        #[command(subcommand)]
        action: ScimTokenCommand,
    },
}

#[derive(Subcommand)]
pub enum ScimTokenCommand {
    /// Create a token for PROVIDER and print it (the only time it is shown).
    Create {
        provider: String,
        /// Days the token stays valid (default 365, at most 1095).
        #[arg(long)]
        valid_days: Option<u32>,
        /// A note to recognise the token by in `list`.
        #[arg(long)]
        note: Option<String>,
        /// For a multi-tenant Entra provider (required there, refused elsewhere): the one
        /// tenant (a GUID of allowed_tenants) whose provisioning job uses this token.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List PROVIDER's tokens (ids, notes, expiry; never the tokens themselves).
    List { provider: String },
    /// Revoke token ID of PROVIDER.
    Revoke {
        provider: String,
        /// Token ids are random base64url and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

impl From<ScimTokenCommand> for crate::admin::scim_tokens::TokenCommand {
    fn from(c: ScimTokenCommand) -> Self {
        use crate::admin::scim_tokens::TokenCommand as T;
        match c {
            ScimTokenCommand::Create {
                provider,
                valid_days,
                note,
                tenant,
            } => T::Create {
                provider,
                valid_days,
                note,
                tenant,
            },
            ScimTokenCommand::List { provider } => T::List { provider },
            ScimTokenCommand::Revoke { provider, id } => T::Revoke { provider, id },
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key now; the previous one stays in the JWKS until every assertion it
    /// signed has expired. Running servers switch within a minute, without a restart.
    Rotate,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("teamgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Control characters in logged values are escaped (no forged lines), so no colours.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(crate::web::log_escape::Escaping(std::io::stderr));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn load(path: &std::path::Path) -> Result<Config, ConfigErrors> {
    Config::load(path)
}

/// Load the config, printing every error when it is invalid.
fn load_or_report(path: &std::path::Path) -> Option<Config> {
    load(path).map_err(|e| eprint!("{e}")).ok()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { listen } => {
            let Some(mut config) = load_or_report(&cli.config) else {
                return Ok(ExitCode::FAILURE);
            };
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(command) => Ok(crate::admin::cli::run(&cli.config, command)),
        Command::Keys {
            action: KeysCommand::Rotate,
        } => {
            let Some(config) = load_or_report(&cli.config) else {
                return Ok(ExitCode::FAILURE);
            };
            let runtime = tokio::runtime::Runtime::new()?;
            print!(
                "{}",
                runtime.block_on(crate::signing::rotate_command(&config))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::ScimToken { action } => {
            let Some(config) = load_or_report(&cli.config) else {
                return Ok(ExitCode::FAILURE);
            };
            print!(
                "{}",
                crate::admin::scim_tokens::run_cli(&config, action.into())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::MigrateDb {
            from,
            to,
            password_env,
            password_file,
        } => migrate_db(&from, &to, password_env, password_file),
        Command::CheckConfig { file } => {
            let path = file.unwrap_or(cli.config);
            match load(&path) {
                Ok(config) => {
                    print!("{}", summary(&config));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprint!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn migrate_db(
    from: &std::path::Path,
    to: &str,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use crate::domain::secret::Secret;
    if !from.is_file() {
        anyhow::bail!("no SQLite database at {}", from.display());
    }
    let password = match (password_env, password_file) {
        (Some(_), Some(_)) => anyhow::bail!("give --password-env or --password-file, not both"),
        (Some(var), None) => {
            Some(Secret::new(std::env::var(&var).map_err(|_| {
                anyhow::anyhow!("the environment variable {var} is not set")
            })?))
        }
        (None, Some(path)) => Some(Secret::new(
            std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
                .trim()
                .to_owned(),
        )),
        (None, None) => None,
    };
    let target =
        crate::config::PgDatabase::parse(to, password).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    eprintln!("copying {} into {} ...", from.display(), target.describe());
    let counts = crate::store::Store::copy_sqlite_to_postgres(from, &target)?;
    println!("{:<16} {:>10} {:>10}", "table", "sqlite", "postgres");
    for (table, source, copied) in &counts {
        println!("{table:<16} {source:>10} {copied:>10}");
    }
    println!(
        "every row copied and counted; set server.database = \"{}\" and start the replicas",
        target.describe()
    );
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let public_url = config.server.public_url.clone();
    let demo = config.server.demo;
    let app = Application::build(config).await?;
    tracing::info!(port = app.port(), "listening");
    // Held until the server stops: SIGHUP reloads the config; the pid file is removed on drop.
    let _reload = crate::admin::reload::install(app.state())?;
    println!("teamgate is running: open {public_url}");
    if demo {
        println!("(demo identity provider enabled: sign in as any demo user listed in the config)");
    }
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM; in-flight requests then finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// The `check-config` summary.
pub fn summary(config: &Config) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", config.path.display());
    let _ = writeln!(out, "public URL: {}", config.server.public_url);
    let _ = writeln!(
        out,
        "database: {} ({})",
        config.server.database.describe(),
        if config.server.database.is_postgres() {
            "PostgreSQL: replicas may share it"
        } else {
            "SQLite: one server"
        }
    );
    let _ = writeln!(out, "providers ({}):", config.providers.len());
    for p in &config.providers {
        let _ = writeln!(
            out,
            "  {:<12} {:<6} {}{}",
            p.id.as_str(),
            p.kind.as_str(),
            p.issuer,
            if p.scim_enabled {
                "  [SCIM enabled]"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(out, "teams ({}):", config.teams.len());
    for t in &config.teams {
        let _ = writeln!(
            out,
            "  {:<20} {:<28} {} role binding(s), {} group mapping(s), {} member(s)",
            t.id.as_str(),
            t.name,
            t.roles.len(),
            t.groups.len(),
            t.members.len()
        );
    }
    let mappings = config.policy().mappings.iter().count();
    let _ = writeln!(out, "mappings: {mappings}");
    if !config.defaults.teams_without_groups.is_empty() {
        let ids: Vec<&str> = config
            .defaults
            .teams_without_groups
            .iter()
            .map(|t| t.as_str())
            .collect();
        let _ = writeln!(out, "default teams: {}", ids.join(", "));
    }
    if !config.defaults.locked_users.is_empty() {
        let _ = writeln!(out, "locked users: {}", config.defaults.locked_users.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, ScimTokenCommand};
    use crate::admin::cli::AdminCommand;

    /// Public ids and token ids are random base64url, so one in 32 starts with `-`: it is
    /// still the value, not an unknown flag (an intermittent test failure found this).
    #[test]
    fn scim_token_create_takes_the_tenant_of_a_multi_tenant_provider() {
        let cli = Cli::try_parse_from([
            "teamgate",
            "scim-token",
            "create",
            "partners",
            "--tenant",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
        ])
        .unwrap();
        match cli.command {
            Command::ScimToken {
                action:
                    ScimTokenCommand::Create {
                        provider, tenant, ..
                    },
            } => {
                assert_eq!(provider, "partners");
                assert_eq!(
                    tenant.as_deref(),
                    Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
                );
            }
            _ => panic!("not create"),
        }
    }

    #[test]
    fn ids_that_start_with_a_dash_are_values() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("teamgate").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        };
        match parse(&["explain", "-Lx3_a"]).command {
            Command::Admin(AdminCommand::Explain { user, .. }) => assert_eq!(user, "-Lx3_a"),
            _ => panic!("not explain"),
        }
        match parse(&["scim-token", "revoke", "entra", "-Q9z"]).command {
            Command::ScimToken {
                action: ScimTokenCommand::Revoke { id, .. },
            } => assert_eq!(id, "-Q9z"),
            _ => panic!("not revoke"),
        }
        parse(&["audit", "--user", "-Lx3_a"]);
        // Known flags are still flags, before or after the id.
        for args in [
            ["explain", "--json", "-Lx3_a"],
            ["explain", "-Lx3_a", "--json"],
        ] {
            match parse(&args).command {
                Command::Admin(AdminCommand::Explain { user, json, .. }) => {
                    assert_eq!((user.as_str(), json), ("-Lx3_a", true), "{args:?}");
                }
                _ => panic!("not explain"),
            }
        }
    }
}
