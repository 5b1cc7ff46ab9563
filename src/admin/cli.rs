//! `teamgate plan`, `explain`, `audit` and `reload`. The first three open the database read-only
//! (the running server's writer keeps the only write lock) and change nothing; `reload` sends
//! SIGHUP to the server through its pid file and waits for the outcome it records.
//!
//! Exit statuses: 0 success (`plan`: no change), 2 (`plan` only) changes to apply, 1 error.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{Config, ConfigErrors, Database};
use crate::domain::Clock;
use crate::domain::explain;
use crate::domain::plan;
use crate::domain::reconcile::Source;
use crate::membership::Identity;
use crate::membership::lookup::find_users;
use crate::membership::plan::{
    Baseline, compute_plan, differs_from_applied, explain_user, plan_from_empty,
};
use crate::store::audit::{AuditFilter, AuditRow, Trigger, TriggerKind};
use crate::store::users::UserRecord;
use crate::store::{ReadTx, Store, StoreError, applied};

/// The admin subcommands, flattened into the top-level `teamgate` command.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Show what applying the config file (--config) would change; changes nothing.
    ///
    /// Teams, role bindings, mappings, and each user's memberships and roles, with reasons.
    /// Exit status: 0 no change, 2 changes, 1 error.
    Plan {
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Why a user holds each team and role: source, group, mapping, when last confirmed.
    Explain {
        /// Email, public id, provider:subject, numeric id, or SCIM userName. Public ids are
        /// random base64url and may start with `-`; they are still taken as the value.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// Also show what this OpenID client (a `[[client]]` id) would receive for the user,
        /// and whether they may sign in to it.
        #[arg(long)]
        client: Option<String>,
        /// Print the explanation as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Query the audit log (newest rows last).
    Audit(AuditArgs),
    /// Make the running server re-read its config file and report the outcome.
    ///
    /// Validates the file, sends SIGHUP to the pid in <database>.pid, and waits for the
    /// server to record whether it applied or refused it.
    Reload {
        /// Seconds to wait for the server's answer.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// A user's browser sessions: list them, or end one or all of them.
    Sessions {
        #[command(subcommand)]
        action: SessionsCommand,
    },
}

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List USER's live sessions: handle, sign-in time, last seen, client address, browser.
    List {
        /// Email, public id, provider:subject, numeric id, or SCIM userName.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// End one session of USER (--session HANDLE, from `list`) or all of them (--all); the
    /// user's next request, at any app, finds them signed out.
    Revoke {
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// The session's handle, as `list` shows it.
        #[arg(
            long,
            allow_hyphen_values = true,
            conflicts_with = "all",
            required_unless_present = "all"
        )]
        session: Option<String>,
        /// Every session of the user.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Args)]
pub struct AuditArgs {
    /// Rows about this user (email, public id, provider:subject, numeric id or SCIM userName).
    #[arg(long, allow_hyphen_values = true)]
    user: Option<String>,
    /// Rows about this team id.
    #[arg(long)]
    team: Option<String>,
    /// Rows of this membership source: claims, scim, config or default.
    #[arg(long)]
    source: Option<String>,
    /// Rows of this trigger: login, refresh, scim, config, admin, cli or client.
    #[arg(long)]
    trigger: Option<String>,
    /// From this time: RFC 3339 (2024-05-01T12:00:00Z), a date (2024-05-01, UTC), or an age
    /// (30m, 12h, 7d).
    #[arg(long)]
    since: Option<String>,
    /// Up to this time, in the same forms as --since.
    #[arg(long)]
    until: Option<String>,
    /// At most this many rows (the newest).
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(ConfigErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "no user matches \"{0}\"; give an email, public id, provider:subject, numeric id or SCIM userName"
    )]
    NoSuchUser(String),
    #[error("\"{key}\" matches several users; give one of their ids instead:\n{list}")]
    Ambiguous { key: String, list: String },
    #[error("{0}")]
    BadArgument(String),
    #[error(transparent)]
    PidFile(#[from] super::pidfile::PidFileError),
    #[error(
        "SIGHUP sent to process {pid}, but it did not answer within {secs}s; check the server's log"
    )]
    NoAnswer { pid: i32, secs: u64 },
    #[error("the server refused the config:\n{0}")]
    Refused(String),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Run one admin command with the config file `config_path`.
pub fn run(config_path: &Path, command: AdminCommand) -> ExitCode {
    let result = match command {
        AdminCommand::Plan { json } => plan_command(config_path, json),
        AdminCommand::Explain { user, client, json } => {
            explain_command(config_path, &user, client.as_deref(), json)
        }
        AdminCommand::Audit(args) => audit_command(config_path, &args),
        AdminCommand::Reload { wait } => reload_command(config_path, Duration::from_secs(wait)),
        AdminCommand::Sessions { action } => sessions_command(config_path, action),
    };
    match result {
        Ok(code) => code,
        Err(CliError::Config(errors)) => {
            eprint!("{errors}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("teamgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> Result<Config, CliError> {
    Config::load(path).map_err(CliError::Config)
}

fn open(database: &Database) -> Result<Store, CliError> {
    if let Some(path) = database.sqlite_path()
        && !path.exists()
    {
        return Err(CliError::BadArgument(format!(
            "no database at {}: start `teamgate serve` with this config once, or check server.database",
            path.display()
        )));
    }
    Ok(Store::open_database_read_only(database)?)
}

/// Whether the configured database exists yet (a PostgreSQL database is asked when opened).
fn exists(database: &Database) -> bool {
    database.sqlite_path().is_none_or(Path::exists)
}

fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn plan_command(config_path: &Path, json: bool) -> Result<ExitCode, CliError> {
    let config = load(config_path)?;
    let database = &config.server.database;
    let (baseline, plan) = if exists(database) {
        open(database)?.read_blocking(|tx| compute_plan(tx, &config))?
    } else {
        plan_from_empty(&config)
    };
    if json {
        print_json(&serde_json::json!({
            "changes": !plan.is_empty(),
            "file": config.path,
            "database": database.describe(),
            "compared_with": baseline,
            "plan": plan,
        }))?;
    } else {
        match &baseline {
            Baseline::Applied { path, at } => {
                println!(
                    "Comparing {} with the config applied to {} ({path}, at {at}).\n",
                    config.path.display(),
                    database.describe()
                );
            }
            Baseline::Tables => println!(
                "Comparing {} with the teams synced into {} (no record of members, defaults or locks).\n",
                config.path.display(),
                database.describe()
            ),
            Baseline::Empty => println!(
                "No database at {} yet: everything in the file is new.\n",
                database.describe()
            ),
        }
        print!("{}", plan::render_text(&plan));
    }
    Ok(if plan.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn explain_command(
    config_path: &Path,
    key: &str,
    client: Option<&str>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let config = load(config_path)?;
    let client = match client {
        None => None,
        Some(id) => Some(config.client(id).ok_or_else(|| {
            CliError::BadArgument(format!(
                "no [[client]] with id \"{id}\" in {}",
                config.path.display()
            ))
        })?),
    };
    let store = open(&config.server.database)?;
    let (explanation, differs, for_client) = store.read_blocking(|tx| {
        let user = one_user(tx, key)?;
        let for_client = match client {
            None => None,
            Some(c) => {
                let identity = Identity::build(&config, &user, tx.memberships(user.id)?);
                Some(crate::authorize::explain(c, &user, &identity))
            }
        };
        Ok::<_, CliError>((
            explain_user(tx, &user, &config)?,
            differs_from_applied(tx, &config)?,
            for_client,
        ))
    })?;
    if json {
        print_json(&serde_json::json!({
            "config_differs_from_applied": differs,
            "explanation": explanation,
            "client": for_client,
        }))?;
    } else {
        print!("{}", explain::render_text(&explanation));
        if let Some(c) = &for_client {
            println!();
            print!("{}", c.render_text());
        }
        if differs {
            println!(
                "\nnote: {} differs from the config the server applied; `teamgate plan` shows the difference.",
                config.path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sessions_command(config_path: &Path, action: SessionsCommand) -> Result<ExitCode, CliError> {
    let config = load(config_path)?;
    let clock = Clock::system();
    match action {
        SessionsCommand::List { user, json } => {
            let store = open(&config.server.database)?;
            let now = clock.unix();
            let (user, sessions) = store.read_blocking(|tx| {
                let user = one_user(tx, &user)?;
                let sessions = super::sessions::list(tx, &user, now)?;
                Ok::<_, CliError>((user, sessions))
            })?;
            if json {
                print_json(&serde_json::json!({
                    "user": { "id": user.public_id, "label": user.label() },
                    "sessions": sessions,
                }))?;
            } else {
                print!("{}", super::sessions::render_text(&user, &sessions));
            }
            Ok(ExitCode::SUCCESS)
        }
        SessionsCommand::Revoke { user, session, all } => {
            if !exists(&config.server.database) {
                open(&config.server.database)?;
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::BadArgument(format!("cannot start the runtime: {e}")))?;
            let key = user;
            let (label, outcome) = runtime.block_on(async {
                let store = Store::open_database(&config.server.database).await?;
                let trigger = Trigger::new(
                    TriggerKind::Cli,
                    None,
                    Some("teamgate sessions revoke".into()),
                );
                let (key, handle, clock) = (key.clone(), session.clone(), clock.clone());
                store
                    .write(move |tx| {
                        let user = one_user(tx, &key)?;
                        let outcome = match &handle {
                            Some(handle) => {
                                super::sessions::end_one(tx, &clock, &trigger, &user, handle)?
                            }
                            None => {
                                super::sessions::end_all(tx, &clock, &trigger, &user)?;
                                true
                            }
                        };
                        Ok::<_, CliError>((user.label(), outcome))
                    })
                    .await
            })?;
            match (&session, outcome, all) {
                (Some(handle), true, _) => println!("ended session {handle} of {label}"),
                (Some(handle), false, _) => {
                    return Err(CliError::BadArgument(format!(
                        "{label} has no live session {handle}; `teamgate sessions list` shows the handles"
                    )));
                }
                (None, _, _) => println!("ended every session of {label}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The one user `key` names.
fn one_user(tx: &dyn ReadTx, key: &str) -> Result<UserRecord, CliError> {
    let mut found = find_users(tx, key)?;
    match found.len() {
        0 => Err(CliError::NoSuchUser(key.to_owned())),
        1 => Ok(found.remove(0)),
        _ => Err(CliError::Ambiguous {
            key: key.to_owned(),
            list: found
                .iter()
                .map(|u| {
                    format!(
                        "  {}  {}:{}  {}",
                        u.public_id,
                        u.provider,
                        u.subject,
                        u.label()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }),
    }
}

/// Parse a time bound: RFC 3339, a date (midnight UTC), or an age before `now` (`30m`, `12h`,
/// `7d`, `90s`).
pub fn parse_time(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_format) {
        return Ok(d.midnight().assume_utc());
    }
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = number.parse().map_err(|_| bad_time(s))?;
    let age = match unit {
        "s" => time::Duration::seconds(n),
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => return Err(bad_time(s)),
    };
    Ok(now - age)
}

fn bad_time(s: &str) -> String {
    format!(
        "\"{s}\" is not a time; write 2024-05-01T12:00:00Z, 2024-05-01, or an age such as 30m, 12h, 7d"
    )
}

/// The audit filter the arguments describe.
fn audit_filter(tx: &dyn ReadTx, args: &AuditArgs) -> Result<AuditFilter, CliError> {
    let now = Clock::system().now();
    let time = |s: &Option<String>| {
        s.as_deref()
            .map(|s| parse_time(s, now).map_err(CliError::BadArgument))
            .transpose()
    };
    let source = args
        .source
        .as_deref()
        .map(|s| {
            Source::parse(s).ok_or_else(|| {
                CliError::BadArgument(format!(
                    "--source \"{s}\" is unknown; use claims, scim, config or default"
                ))
            })
        })
        .transpose()?;
    let user_ids = match &args.user {
        Some(u) => find_users(tx, u)?.into_iter().map(|u| u.id).collect(),
        None => Vec::new(),
    };
    Ok(AuditFilter {
        user_ids,
        user_label: args.user.clone(),
        team: args.team.clone(),
        source,
        trigger: args.trigger.clone(),
        since: time(&args.since)?,
        until: time(&args.until)?,
        limit: args.limit,
    })
}

fn audit_command(config_path: &Path, args: &AuditArgs) -> Result<ExitCode, CliError> {
    let config = load(config_path)?;
    let store = open(&config.server.database)?;
    let mut rows = store.read_blocking(|tx| {
        let filter = audit_filter(tx, args)?;
        Ok::<_, CliError>(tx.audit(&filter)?)
    })?;
    rows.reverse();
    if args.json {
        print_json(&rows)?;
    } else {
        print!("{}", render_audit(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

/// Audit rows as aligned text, one per line.
pub fn render_audit(rows: &[AuditRow]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("(no audit rows match)\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<30} {:<7} {:<22} {:<24} {:<18} {:<8} {:<20} DETAIL",
        "AT", "TRIGGER", "ACTION", "USER", "TEAM", "SOURCE", "GROUP"
    );
    let dash = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("-")
            .to_owned()
    };
    for r in rows {
        let _ = writeln!(
            out,
            "{:<30} {:<7} {:<22} {:<24} {:<18} {:<8} {:<20} {}",
            r.at,
            r.trigger,
            r.action,
            dash(&r.user_label),
            dash(&r.team),
            dash(&r.source),
            dash(&r.via),
            dash(&r.detail)
        );
    }
    out
}

fn reload_command(config_path: &Path, wait: Duration) -> Result<ExitCode, CliError> {
    // Validate first: an invalid file is refused here and the server is not disturbed.
    let config = load(config_path)?;
    let database = config.server.database.clone();
    let store = open(&database)?;
    let anchor = super::pidfile::anchor(&database, &config.path);
    // The server re-reads its own file: a reload "of" another file would apply something
    // other than what was just validated here.
    if let Some(theirs) = super::pidfile::server_config(&anchor)? {
        let same = |p: &Path| std::fs::canonicalize(p).ok();
        if same(config_path) != same(&theirs) {
            return Err(CliError::BadArgument(format!(
                "the server re-reads {}, not {}; put the new config in that file (check it with `teamgate plan --config {}`), then run `teamgate reload --config {}`",
                theirs.display(),
                config_path.display(),
                theirs.display(),
                theirs.display()
            )));
        }
    }
    let before = store
        .read_blocking(applied::last_reload)?
        .map_or(0, |s| s.seq);
    let pid = super::pidfile::signal_reload(&anchor)?;
    eprintln!(
        "SIGHUP sent to teamgate (process {pid}); waiting for it to apply {}",
        config_path.display()
    );
    let deadline = Instant::now() + wait;
    loop {
        if let Some(status) = store
            .read_blocking(applied::last_reload)?
            .filter(|s| s.seq > before)
        {
            return if status.ok {
                println!("{}", status.message);
                Ok(ExitCode::SUCCESS)
            } else {
                Err(CliError::Refused(status.message))
            };
        }
        if Instant::now() >= deadline {
            return Err(CliError::NoAnswer {
                pid,
                secs: wait.as_secs(),
            });
        }
        // The server records its answer in the database; polling a read-only store is the one
        // channel both sides already share.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_dates_or_ages() {
        let now = OffsetDateTime::parse("2024-05-10T12:00:00Z", &Rfc3339).unwrap();
        let at = |s: &str| parse_time(s, now).unwrap().format(&Rfc3339).unwrap();
        assert_eq!(at("2024-05-01T08:30:00+02:00"), "2024-05-01T08:30:00+02:00");
        assert_eq!(at("2024-05-01"), "2024-05-01T00:00:00Z");
        assert_eq!(at("30m"), "2024-05-10T11:30:00Z");
        assert_eq!(at("7d"), "2024-05-03T12:00:00Z");
        for bad in ["yesterday", "5w", "", "2024-13-01"] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
