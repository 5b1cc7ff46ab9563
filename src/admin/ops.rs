//! Operations endpoints: `/readyz` (the database takes a write through the single writer, and
//! every provider's discovery document is loaded) and `/metrics` (Prometheus text format), only
//! on `server.metrics_listen`, behind a bearer token when one is configured. `/healthz` (alive) lives
//! with the pages. None of them shows internal error text.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use sha2::Digest;

use crate::config::ProviderKind;
use crate::domain::secret::Secret;
use crate::state::AppState;
use crate::store::{StoreError, WriteMode, applied};
use crate::web::headers::no_store;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub fn routes() -> Router<AppState> {
    Router::new().route("/readyz", get(readyz))
}

/// `/metrics`, served alone on `server.metrics_listen` and never on the login listener (it
/// tells anyone who reads it which providers exist and how busy teamgate is). With a token
/// (`metrics_token_env` / `metrics_token_file`) every scrape must send
/// `Authorization: Bearer <token>`.
pub fn metrics_routes(token: Option<Secret>) -> Router {
    Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let token = token.clone();
            async move {
                match &token {
                    Some(token) if !bearer_matches(&headers, token) => {
                        let mut response =
                            (StatusCode::UNAUTHORIZED, "a bearer token is required\n")
                                .into_response();
                        response.headers_mut().insert(
                            header::WWW_AUTHENTICATE,
                            HeaderValue::from_static("Bearer realm=\"teamgate-metrics\""),
                        );
                        response
                    }
                    _ => metrics().await,
                }
            }
        }),
    )
}

/// `Authorization: Bearer <token>` with the configured token, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &Secret) -> bool {
    use subtle::ConstantTimeEq;
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
    else {
        return false;
    };
    let a = sha2::Sha256::digest(presented.as_bytes());
    let b = sha2::Sha256::digest(token.expose().as_bytes());
    bool::from(a.ct_eq(&b))
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    database: &'static str,
    providers: Vec<ProviderReadiness>,
    config: ConfigReadiness,
}

/// Which applied config this process serves, and whether its own file is that one (replicas
/// on one database serve the applied version whatever their file says). What differs (paths,
/// digests, what to do) is logged and shown on `/admin`, not here: `/readyz` is reachable
/// through the proxy, and names only what is not ready.
#[derive(Serialize)]
struct ConfigReadiness {
    version: u64,
    sha256: String,
    /// `matches` or `differs`.
    file: &'static str,
}

#[derive(Serialize)]
struct ProviderReadiness {
    id: String,
    discovery: &'static str,
}

async fn readyz(State(state): State<AppState>) -> Response {
    let config = state.config.get();
    let now = state.clock.stamp();
    let database = match tokio::time::timeout(
        CHECK_TIMEOUT,
        state
            .store
            .write_with(WriteMode::Simple, move |tx| applied::touch_ready(tx, &now)),
    )
    .await
    {
        Ok(Ok(())) => "ok",
        Ok(Err(StoreError::Unavailable(why))) => {
            tracing::warn!(%why, "readyz: the database is unreachable");
            "unreachable"
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: the database refused a write");
            "error"
        }
        Err(_) => {
            tracing::warn!("readyz: the database write timed out");
            "timeout"
        }
    };
    // Discovery is cached by the provider runtimes (an hour; a stale copy is kept when the
    // IdP is down), so a probe costs a fetch only when nothing is loaded yet.
    let checks = config.providers.iter().map(|p| {
        let runtime = state.providers.runtime(p);
        let id = p.id.to_string();
        let kind = p.kind;
        async move {
            let discovery = match tokio::time::timeout(CHECK_TIMEOUT, runtime.metadata()).await {
                Ok(Ok(_)) => "ok",
                Ok(Err(e)) => {
                    tracing::warn!(provider = %id, error = %e, "readyz: discovery not loaded");
                    "unreachable"
                }
                Err(_) => {
                    tracing::warn!(provider = %id, "readyz: discovery timed out");
                    "timeout"
                }
            };
            // The demo IdP is served by this very process; it is ready when we are.
            let discovery = if kind == ProviderKind::Demo && discovery != "ok" {
                "ok"
            } else {
                discovery
            };
            ProviderReadiness { id, discovery }
        }
    });
    let providers = futures_join_all(checks).await;
    let config_readiness = ConfigReadiness {
        version: state.config.version(),
        sha256: config.source.short().to_owned(),
        file: if state.config.file_differs().is_some() {
            "differs"
        } else {
            "matches"
        },
    };
    let ready = database == "ok" && providers.iter().all(|p| p.discovery == "ok");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    no_store(
        (
            status,
            axum::Json(Readiness {
                ready,
                database,
                providers,
                config: config_readiness,
            }),
        )
            .into_response(),
    )
}

/// Run the checks concurrently (one slow IdP must not add to the others' time).
async fn futures_join_all<F: std::future::Future<Output = ProviderReadiness> + Send + 'static>(
    checks: impl Iterator<Item = F>,
) -> Vec<ProviderReadiness> {
    let mut set = tokio::task::JoinSet::new();
    for (i, check) in checks.enumerate() {
        set.spawn(async move { (i, check.await) });
    }
    let mut out: Vec<(usize, ProviderReadiness)> = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok(v) => out.push(v),
            Err(e) => {
                // A check that died proves nothing: count it as not ready.
                tracing::error!(error = %e, "readyz: a provider check panicked");
                out.push((
                    usize::MAX,
                    ProviderReadiness {
                        id: "(unknown)".into(),
                        discovery: "error",
                    },
                ));
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, p)| p).collect()
}

async fn metrics() -> Response {
    let mut response = crate::metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}
