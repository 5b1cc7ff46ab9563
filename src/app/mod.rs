//! The running application: [`Application::build`] opens the store, syncs the config into it,
//! prepares the providers and the use cases, and binds the listener; [`router`] assembles
//! every adapter's routes; the background tasks (session pruning) start here.

pub mod router;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::authorize::Authorize;
use crate::config::{Config, LiveConfig, ProviderKind};
use crate::domain::Clock;
use crate::domain::secret::Secret;
use crate::idp::Providers;
use crate::idp::http_client::{IdpHttp, IdpHttpError};
use crate::membership::sync_at_start;
use crate::provider::demo::{DemoIdp, DemoIdpError};
use crate::provisioning::Provisioning;
use crate::signin::sealed::Sealer;
use crate::signin::{RefreshGrants, SignIn};
use crate::state::AppState;
use crate::store::{Store, StoreError, WriteMode, applied};
use crate::web::rate_limit::RateLimit;
use crate::web::templates::{TemplateError, Templates};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot build the HTTP client")]
    Http(#[source] IdpHttpError),
    #[error("demo identity provider")]
    Demo(#[source] DemoIdpError),
    #[error("signing keys")]
    Keys(#[source] crate::signing::SigningError),
    #[error("server.secret_key")]
    Seal(#[source] crate::signin::sealed::SealError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    /// `server.metrics_listen`, bound at build so a busy port fails the start.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    /// The built-in demo OpenID provider, when the config has one.
    demo_idp: Option<Arc<DemoIdp>>,
}

impl Application {
    /// Build the application from a validated config, listening on `config.server.listen`
    /// (port 0 picks a free port; see [`Application::port`]).
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        Self::build_with_listener(config, listener).await
    }

    /// Build on an already bound listener (tests bind first to learn the port for `public_url`).
    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> Result<Application, StartError> {
        let metrics_listener = match config.server.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let clock = Clock::system();
        let store = Store::open_database(&config.server.database).await?;
        let own_sha = config.source.sha256.clone();
        // On a database shared by replicas, the config applied there wins over this file.
        let synced = sync_at_start(
            &store,
            &clock,
            config.clone(),
            config.server.database.is_postgres(),
        )
        .await?;
        if let Some(why) = &synced.file_differs {
            tracing::warn!(%why, "serving the applied config, not this replica's file");
        }
        let report = synced.report.clone();
        let config = Config::clone(&synced.config);
        tracing::info!(
            version = synced.version,
            sha256 = config.source.short(),
            "applied config version"
        );
        let templates = Arc::new(Templates::new(config.server.base_path())?);
        tracing::info!(
            teams_added = report.teams_added.len(),
            teams_removed = report.teams_removed.len(),
            users_changed = report.users_changed,
            "config synced into the database"
        );
        // The assertion signing key exists from the first start, before any request needs it.
        crate::signing::load(&store, &clock)
            .await
            .map_err(StartError::Keys)?;
        // ID tokens are RS256 by default: the key exists before the first client needs it.
        if !config.clients.is_empty() {
            crate::signing::ensure_rsa_key(&store, &clock)
                .await
                .map_err(StartError::Keys)?;
        }
        let (demo_idp, demo_client_secret) = demo_provider(&config, &store, &templates).await?;
        let http = IdpHttp::new(config.server.idp_connect_timeout, config.server.idp_timeout)
            .map_err(StartError::Http)?;
        // With a secret key, refresh grants live in the database (sealed), so every replica
        // can re-evaluate them; without one, in this process's memory.
        let grants = match &config.server.secret_key {
            Some(key) => RefreshGrants::stored(Sealer::new(key).map_err(StartError::Seal)?),
            None => RefreshGrants::default(),
        };
        let login_limit = Arc::new(RateLimit::per_minute(
            config.server.login_rate_per_minute,
            config.server.login_rate_burst,
        ));
        let config = Arc::new(LiveConfig::new(config));
        config.set_version_number(synced.version);
        config.set_own_file(&own_sha);
        config.set_file_differs(synced.file_differs.clone());
        store.follow_config(config.clone());
        let providers = Arc::new(Providers::new(http, clock.clone()));
        let state = AppState {
            signin: SignIn {
                store: store.clone(),
                config: config.clone(),
                providers: providers.clone(),
                grants: Arc::new(grants),
                demo_client_secret,
                clock: clock.clone(),
            },
            provisioning: Provisioning {
                store: store.clone(),
                config: config.clone(),
                clock: clock.clone(),
            },
            authorize: Authorize {
                store: store.clone(),
                config: config.clone(),
                clock: clock.clone(),
            },
            config,
            store,
            templates,
            clock,
            providers,
            login_limit,
        };
        tokio::spawn(prune_expired_sessions(
            state.store.clone(),
            state.clock.clone(),
            state.authorize.clone(),
        ));
        tokio::spawn(forget_idle_clients(state.login_limit.clone()));
        if state.signin.grants.in_database() {
            state.signin.ensure_refreshing();
        }
        if state.store.events().is_some() {
            tokio::spawn(follow_applied_config(
                state.store.clone(),
                state.config.clone(),
            ));
        }
        Ok(Application {
            listener,
            metrics_listener,
            state,
            demo_idp,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves, then finish in-flight requests. The metrics listener,
    /// if any, serves until then too (a scrape needs no draining).
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let metrics = self.metrics_listener.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving /metrics on its own listener");
            }
            let token = self.state.config.get().server.metrics_token.clone();
            tokio::spawn(async move {
                let router = crate::admin::ops::metrics_routes(token)
                    .layer(axum::middleware::from_fn(crate::web::headers::layer));
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            })
        });
        let router = router::router(self.state, self.demo_idp);
        let served = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        served
    }
}

/// Start the demo IdP when the config has a demo provider: its key comes from the store, its
/// client secret is made now and shared with the relying party in memory.
async fn demo_provider(
    config: &Config,
    store: &Store,
    templates: &Arc<Templates>,
) -> Result<(Option<Arc<DemoIdp>>, Option<Secret>), StartError> {
    let Some(provider) = config
        .providers
        .iter()
        .find(|p| p.kind == ProviderKind::Demo)
    else {
        return Ok((None, None));
    };
    tracing::warn!(
        "the DEMO identity provider is enabled: anyone can sign in as any demo user. Never use this in production."
    );
    let key = crate::provider::demo::load_or_create_key(store)
        .await
        .map_err(StartError::Demo)?;
    let secret = Secret::new(crate::domain::ids::random_id());
    let idp = DemoIdp::new(
        provider.issuer.clone(),
        provider.client_id.clone(),
        secret.clone(),
        crate::oidc::flow::redirect_uri(config, provider),
        config.demo_users.clone(),
        key,
        templates.clone(),
    )
    .map_err(StartError::Demo)?;
    Ok((Some(Arc::new(idp)), Some(secret)))
}

/// Forget rate-limited addresses that have fully recovered, every minute.
async fn forget_idle_clients(limit: Arc<RateLimit>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        limit.forget_idle();
    }
}

/// Delete expired session rows (and with them their grants) and expired provider grants and
/// tokens every ten minutes, once across the processes sharing the database (a lease: a
/// replica that finds another pruning skips its turn).
async fn prune_expired_sessions(store: Store, clock: Clock, authorize: Authorize) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = clock.unix();
        let pruning = store.clone();
        let authorize = authorize.clone();
        let ran = store
            .with_lease("prune-sessions", async move {
                match pruning
                    .write_with(WriteMode::Simple, move |tx| tx.delete_expired_sessions(now))
                    .await
                {
                    Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired sessions pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot prune expired sessions"),
                }
                match authorize.prune().await {
                    Ok(n) if n > 0 => {
                        tracing::debug!(deleted = n, "expired provider grants pruned")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot prune expired provider grants"),
                }
            })
            .await;
        match ran {
            Ok(true) => {}
            Ok(false) => tracing::debug!("another replica is pruning sessions"),
            Err(e) => tracing::warn!(error = %e, "cannot take the pruning lease"),
        }
    }
}

/// Follow the config applied by other replicas: on their notification, and once a second in
/// case one was missed (the write jobs also check the version before they run).
async fn follow_applied_config(store: Store, live: Arc<LiveConfig>) {
    let mut events = store.events();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match events.as_mut() {
            Some(rx) => {
                tokio::select! {
                    _ = tick.tick() => {}
                    event = rx.recv() => {
                        if matches!(event, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                            events = None;
                        }
                    }
                }
            }
            None => {
                tick.tick().await;
            }
        }
        let known = live.version();
        let applied = store
            .read(move |tx| {
                if applied::load_version(tx)? > known {
                    applied::load_text(tx)
                } else {
                    Ok(None)
                }
            })
            .await;
        match applied {
            Ok(Some(applied)) => {
                if let Err(why) = applied::follow(&applied, &live) {
                    tracing::error!(%why, "cannot switch to the applied config");
                    live.set_file_differs(Some(why));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read the applied config version"),
        }
    }
}
