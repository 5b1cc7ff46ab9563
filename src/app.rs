//! The running application: [`Application::build`] opens the store, syncs the config into it,
//! prepares the providers and binds the listener; [`AppState`] is the one cloneable state every
//! handler receives.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::oidc::http_client::IdpHttp;
use crate::store::audit::Trigger;
use crate::store::teams::SyncReport;

use crate::config::{Config, LiveConfig, ProviderConfig, ProviderKind};
use crate::http::templates::Templates;
use crate::oidc::Providers;
use crate::secret::Secret;
use crate::store::Store;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<LiveConfig>,
    pub store: Store,
    pub templates: Arc<Templates>,
    /// Discovery and JWKS caches of the identity providers.
    pub providers: Arc<Providers>,
    /// The demo IdP's client secret, made at start (there is no file to read it from).
    pub demo_client_secret: Option<Secret>,
    /// The built-in demo OpenID provider, when the config has one.
    pub demo_idp: Option<Arc<crate::demo_idp::DemoIdp>>,
}

impl AppState {
    /// The client secret teamgate presents to `provider`'s token endpoint.
    pub fn client_secret(&self, provider: &ProviderConfig) -> Option<openidconnect::ClientSecret> {
        let secret = match provider.kind {
            ProviderKind::Demo => self.demo_client_secret.as_ref(),
            _ => provider.client_secret.as_ref(),
        };
        secret.map(|s| openidconnect::ClientSecret::new(s.expose().to_owned()))
    }
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Template(#[from] crate::http::templates::TemplateError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("demo identity provider: {0}")]
    Demo(String),
    #[error("assertion signing keys: {0}")]
    Keys(String),
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
        let store = Store::open(&config.server.database)?;
        let templates = Arc::new(Templates::new()?);
        let report = sync_config(&store, config.clone(), None).await?;
        tracing::info!(
            teams_added = report.teams_added.len(),
            teams_removed = report.teams_removed.len(),
            users_changed = report.users_changed,
            "config synced into the database"
        );
        // The assertion signing key exists from the first start, before any request needs it.
        crate::downstream::keys::load(&store)
            .await
            .map_err(|e| StartError::Keys(e.to_string()))?;
        let (demo_idp, demo_client_secret) = demo_provider(&config, &store, &templates).await?;
        let http = IdpHttp::new(config.server.idp_connect_timeout, config.server.idp_timeout)
            .map_err(|e| StartError::Http(e.to_string()))?;
        let state = AppState {
            config: Arc::new(LiveConfig::new(config)),
            store,
            templates,
            providers: Arc::new(Providers::new(http)),
            demo_client_secret,
            demo_idp,
        };
        tokio::spawn(prune_expired_sessions(state.store.clone()));
        Ok(Application {
            listener,
            metrics_listener,
            state,
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
            tokio::spawn(async move {
                let router: axum::Router = crate::admin::ops::metrics_routes();
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            })
        });
        let router = crate::http::router::router(self.state);
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

/// Copy the config's teams, bindings and mappings into the store and reconcile every user.
/// With `live` (a reload of a running server), `config` becomes the config in force inside
/// the same write job, before any later job runs (see [`LiveConfig`]); if the commit then
/// fails, the previous config is put back on the writer thread, before any later job either.
pub async fn sync_config(
    store: &Store,
    config: Config,
    live: Option<&Arc<LiveConfig>>,
) -> Result<SyncReport, crate::store::StoreError> {
    let config = Arc::new(config);
    let trigger = Trigger::new(
        "config",
        None,
        Some(format!("config {}", config.path.display())),
    );
    let swap = live.cloned();
    let job = move |conn: &rusqlite::Connection| {
        let report = crate::store::teams::sync_config(conn, &config, &trigger)?;
        // Same transaction: `teamgate plan` compares a new file with exactly this.
        crate::admin::record_applied(conn, &config)?;
        if let Some(live) = swap {
            live.set(config);
        }
        Ok(report)
    };
    match live {
        None => store.write(job).await,
        Some(live) => {
            let (live, previous) = (live.clone(), live.get());
            store
                .write_undoable(job, Box::new(move || live.set(previous)))
                .await
        }
    }
}

/// Start the demo IdP when the config has a demo provider: its key comes from the store, its
/// client secret is made now and shared with the relying party in memory.
async fn demo_provider(
    config: &Config,
    store: &Store,
    templates: &Arc<Templates>,
) -> Result<(Option<Arc<crate::demo_idp::DemoIdp>>, Option<Secret>), StartError> {
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
    let key = crate::demo_idp::load_or_create_key(store)
        .await
        .map_err(|e| StartError::Demo(e.to_string()))?;
    let secret = Secret::new(crate::store::random_id());
    let idp = crate::demo_idp::DemoIdp::new(
        provider.issuer.clone(),
        provider.client_id.clone(),
        secret.clone(),
        crate::oidc::login::redirect_uri(config, provider),
        config.demo_users.clone(),
        key,
        templates.clone(),
    )
    .map_err(|e| StartError::Demo(e.to_string()))?;
    Ok((Some(Arc::new(idp)), Some(secret)))
}

/// Delete expired session rows every ten minutes.
async fn prune_expired_sessions(store: Store) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match store
            .write(move |conn| crate::store::sessions::delete_expired(conn, now))
            .await
        {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired sessions pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot prune expired sessions"),
        }
    }
}
