//! Live reload: re-read the config file the server started with, validate it whole, and only
//! then apply it: teams, bindings, mappings and every user's memberships in one transaction
//! (with audit rows naming the change), followed by the swap of the live config. An invalid
//! file is refused with every error logged, and the server keeps the config it has.
//! Triggered by SIGHUP (`teamgate reload` sends it) and by the admin page's reload button.

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::config::{Config, ConfigErrors};
use crate::membership::{SyncReport, sync_config};
use crate::state::AppState;
use crate::store::applied::{self, ReloadStatus};
use crate::store::audit::{Entry, Trigger, TriggerKind};
use crate::store::{StoreError, WriteTx};

/// One reload at a time: two overlapping reloads could otherwise commit in one order and swap
/// the live config in the other. Process-wide like the signal it serves; harmless when tests
/// run several apps in one process (their reloads merely take turns).
static RELOADING: Mutex<()> = Mutex::const_new(());

/// Why a reload did not apply.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is invalid; nothing changed.
    #[error("{0}")]
    Invalid(ConfigErrors),
    /// The file changes something only a restart can change; nothing changed.
    #[error("{0}")]
    NeedsRestart(String),
    /// Applying failed; the transaction rolled back and the old config stays.
    #[error("cannot apply the config: {0}")]
    Store(#[from] StoreError),
    #[error("the config loader stopped unexpectedly")]
    Loader,
}

/// What an applied reload did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub report: SyncReport,
    /// Settings that differ but only take effect at the next start.
    pub restart_pending: Vec<&'static str>,
    pub status: ReloadStatus,
}

/// Re-read and apply the config file of the running server. The outcome is logged, counted
/// in `/metrics`, and recorded for `teamgate reload` to read back.
pub async fn reload(state: &AppState, cause: &str) -> Result<Applied, ReloadError> {
    let _one_at_a_time = RELOADING.lock().await;
    let current = state.config.get();
    let path = current.path.clone();
    tracing::info!(file = %path.display(), cause, "reloading the config");
    // One read feeds both the validation and the digest named in the audit row.
    let loaded = tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
        Ok(text) => (Config::parse(&text, &path), hex_digest(text.as_bytes())),
        Err(_) => (Config::load(&path), String::new()),
    })
    .await
    .map_err(|_| ReloadError::Loader)?;
    let (new, digest) = match loaded {
        (Ok(new), digest) => (new, digest),
        (Err(errors), _) => {
            for e in &errors.0 {
                tracing::error!(error = %e, "config reload refused");
            }
            let message = errors.to_string();
            refuse(state, "refused", &message).await;
            return Err(ReloadError::Invalid(errors));
        }
    };
    if new.server.database != current.server.database {
        let message = format!(
            "server.database changed from {} to {}; a running server cannot move its database: restart it",
            current.server.database.describe(),
            new.server.database.describe()
        );
        tracing::error!(%message, "config reload refused");
        refuse(state, "refused", &message).await;
        return Err(ReloadError::NeedsRestart(message));
    }
    let mut restart_pending = Vec::new();
    if new.server.listen != current.server.listen {
        restart_pending.push("server.listen");
    }
    if new.server.metrics_listen != current.server.metrics_listen
        || new.server.metrics_token != current.server.metrics_token
    {
        restart_pending.push("server.metrics_listen / metrics_token_env / metrics_token_file");
    }
    if new.server.login_rate_per_minute != current.server.login_rate_per_minute
        || new.server.login_rate_burst != current.server.login_rate_burst
    {
        restart_pending.push("server.login_rate_per_minute / login_rate_burst");
    }
    if new.server.public_url != current.server.public_url {
        restart_pending.push("server.public_url");
    }
    if new.server.idp_timeout != current.server.idp_timeout
        || new.server.idp_connect_timeout != current.server.idp_connect_timeout
    {
        restart_pending.push("server.idp_timeout_seconds / idp_connect_timeout_seconds");
    }
    if new.server.demo != current.server.demo || new.demo_users.len() != current.demo_users.len() {
        restart_pending.push("the demo identity provider");
    }
    for key in &restart_pending {
        tracing::warn!(
            setting = key,
            "changed in the config file; takes effect at the next restart"
        );
    }
    let report =
        match sync_config(&state.store, &state.clock, new.clone(), Some(&state.config)).await {
            Ok(report) => report,
            Err(e) => {
                tracing::error!(error = %e, "config reload failed; the old config stays");
                refuse(state, "failed", &format!("cannot apply the config: {e}")).await;
                return Err(ReloadError::Store(e));
            }
        };
    let summary = format!(
        "applied {} (sha256 {}): {} team(s) added, {} removed, {} renamed; {} user(s) changed{}",
        new.path.display(),
        &digest[..12.min(digest.len())],
        report.teams_added.len(),
        report.teams_removed.len(),
        report.teams_renamed.len(),
        report.users_changed,
        if restart_pending.is_empty() {
            String::new()
        } else {
            format!("; restart to apply {}", restart_pending.join(", "))
        }
    );
    // `sync_config` made `new` the config in force inside its write job.
    crate::metrics::inc_config_reload("applied");
    tracing::info!(
        teams_added = report.teams_added.len(),
        teams_removed = report.teams_removed.len(),
        teams_renamed = report.teams_renamed.len(),
        users_changed = report.users_changed,
        "config reloaded"
    );
    let status = record(state, true, summary).await?;
    // The other replicas switch now (they also look once a second).
    let version = state.config.version().to_string();
    if let Err(e) = state.store.broadcast("teamgate_config", &version).await {
        tracing::warn!(error = %e, "cannot tell the other replicas about the new config");
    }
    Ok(Applied {
        report,
        restart_pending,
        status,
    })
}

/// Record a refused or failed reload; a failure to record is only logged (the refusal
/// itself already happened and was logged).
async fn refuse(state: &AppState, result: &str, message: &str) {
    crate::metrics::inc_config_reload(result);
    if let Err(e) = record(state, false, message.to_owned()).await {
        tracing::error!(error = %e, "cannot record the reload outcome");
    }
}

/// Write the outcome for `teamgate reload` and one `config.reload` audit row naming it.
async fn record(state: &AppState, ok: bool, message: String) -> Result<ReloadStatus, StoreError> {
    let clock = state.clock.clone();
    state
        .store
        .write(move |tx: &dyn WriteTx| {
            let status = applied::record_reload(tx, ok, &message, &clock.stamp())?;
            let trigger = Trigger::new(TriggerKind::Config, None, Some(message.clone()));
            tx.record_audit(
                &status.at,
                &trigger,
                &Entry {
                    action: if ok {
                        "config.reload"
                    } else {
                        "config.reload_refused"
                    },
                    ..Entry::default()
                },
            )?;
            Ok(status)
        })
        .await
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reload on every SIGHUP for as long as the server runs. The handler is installed before
/// this returns, so a SIGHUP sent right after (by `teamgate reload`, which finds the pid file
/// written next) never meets the default action, which would terminate the server.
#[cfg(unix)]
pub fn listen_for_sighup(state: AppState) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // The outcome is logged and recorded inside `reload`.
            let _ = reload(&state, "SIGHUP").await;
        }
    });
    Ok(())
}

#[cfg(not(unix))]
pub fn listen_for_sighup(_state: AppState) -> std::io::Result<()> {
    Ok(())
}

/// What `serve` holds while it runs: the pid file (removed on drop).
pub struct ServeGuard {
    _pid_file: super::pidfile::PidFile,
}

/// Install the SIGHUP handler, then write the pid file `teamgate reload` signals through.
pub fn install(state: &AppState) -> anyhow::Result<ServeGuard> {
    let config = state.config.get();
    listen_for_sighup(state.clone())?;
    let pid_file = super::pidfile::PidFile::create(
        &super::pidfile::anchor(&config.server.database, &config.path),
        &config.path,
    )?;
    tracing::info!(pid_file = %pid_file.path().display(), "`teamgate reload` or SIGHUP re-reads the config");
    Ok(ServeGuard {
        _pid_file: pid_file,
    })
}
