//! The running application: [`Application::build`] opens the store, syncs the config into it,
//! prepares the providers and binds the listener; [`AppState`] is the one cloneable state every
//! handler receives.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::templates::Templates;
use crate::store::Store;

/// The config in force. Reload (SIGHUP, `teamgate reload`) swaps it whole; readers take a
/// snapshot with [`LiveConfig::get`] and keep it for the rest of their request.
pub struct LiveConfig(RwLock<Arc<Config>>);

impl LiveConfig {
    pub fn new(config: Config) -> Self {
        Self(RwLock::new(Arc::new(config)))
    }

    pub fn get(&self) -> Arc<Config> {
        match self.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set(&self, config: Config) {
        let new = Arc::new(config);
        match self.0.write() {
            Ok(mut c) => *c = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<LiveConfig>,
    pub store: Store,
    pub templates: Arc<Templates>,
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Template(#[from] crate::http::templates::TemplateError),
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
        let store = Store::open(&config.server.database)?;
        let state = AppState {
            config: Arc::new(LiveConfig::new(config)),
            store,
            templates: Arc::new(Templates::new()?),
        };
        Ok(Application { listener, state })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves, then finish in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = crate::http::router::router(self.state);
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}
