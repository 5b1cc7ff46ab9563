//! Connections: the `tokio_postgres` config from [`PgDatabase`], TLS through rustls with the
//! `ring` provider (the crate's one TLS stack) and libpq's `sslmode` meanings, and the pool.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{PgDatabase, SslMode};
use crate::store::error::{Result, StoreError};

/// Connections per process: writes and reads together. Enough to keep a 2-core PostgreSQL
/// busy; more only adds contention.
pub const POOL_SIZE: usize = 24;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a job waits for a free pooled connection.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `tokio_postgres` config of `db`: one statement per round trip, every commit durable.
pub fn config(db: &PgDatabase) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&db.host)
        .port(db.port)
        .dbname(&db.dbname)
        .user(&db.user)
        .application_name("teamgate")
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        // A 2xx acknowledged to an IdP must survive a crash of the server (whatever the
        // server's default), and a session left in a transaction must not hold locks forever.
        // A lock waited on longer than SQLite's busy timeout is `Busy` (503, Retry-After).
        .options(
            "-c synchronous_commit=on -c idle_in_transaction_session_timeout=60000 -c lock_timeout=5000",
        );
    if let Some(password) = &db.password {
        cfg.password(password.expose());
    }
    cfg.ssl_mode(match db.sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    cfg
}

fn open_error(db: &PgDatabase, why: String) -> StoreError {
    StoreError::Open {
        path: db.describe(),
        source: why.into(),
    }
}

/// The rustls client config for `sslmode`.
pub fn tls(db: &PgDatabase) -> Result<Option<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| open_error(db, e.to_string()))?;
    Ok(match db.sslmode {
        SslMode::Disable => None,
        SslMode::Require => Some(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
        ),
        SslMode::VerifyFull => {
            let mut roots = RootCertStore::empty();
            match &db.root_cert {
                Some(path) => {
                    use rustls::pki_types::pem::PemObject;
                    let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                        open_error(db, format!("cannot read {}: {e}", path.display()))
                    })?;
                    for cert in certs {
                        let cert = cert.map_err(|e| {
                            open_error(db, format!("bad certificate in {}: {e}", path.display()))
                        })?;
                        roots.add(cert).map_err(|e| {
                            open_error(db, format!("bad certificate in {}: {e}", path.display()))
                        })?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            Some(builder.with_root_certificates(roots).with_no_client_auth())
        }
    })
}

/// `sslmode=require`: encrypted, the certificate not checked (libpq's meaning). The handshake
/// signature is still verified, so the session key belongs to whoever holds the certificate.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The pool of `db` (connections are made on first use).
pub fn pool(db: &PgDatabase) -> Result<Pool> {
    let cfg = config(db);
    let manager_config = ManagerConfig {
        // A connection broken by a server restart is found closed and replaced.
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls(db)? {
        None => Manager::from_config(cfg, tokio_postgres::NoTls, manager_config),
        Some(tls) => Manager::from_config(
            cfg,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            manager_config,
        ),
    };
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(WAIT_TIMEOUT),
            create: Some(CONNECT_TIMEOUT),
            recycle: Some(CONNECT_TIMEOUT),
        })
        .build()
        .map_err(|e| open_error(db, e.to_string()))
}

/// Connect once, outside the pool (the notification listener).
pub async fn connect_one(
    db: &PgDatabase,
) -> std::result::Result<
    (
        tokio_postgres::Client,
        Box<
            dyn FnMut(
                    &mut std::task::Context<'_>,
                ) -> std::task::Poll<
                    Option<
                        std::result::Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>,
                    >,
                > + Send,
        >,
    ),
    String,
> {
    let cfg = config(db);
    match tls(db).map_err(|e| e.to_string())? {
        None => {
            let (client, mut conn) = cfg
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| error_chain(&e))?;
            Ok((client, Box::new(move |cx| conn.poll_message(cx))))
        }
        Some(tls) => {
            let (client, mut conn) = cfg
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
                .await
                .map_err(|e| error_chain(&e))?;
            Ok((client, Box::new(move |cx| conn.poll_message(cx))))
        }
    }
}

/// Why the pool gave no connection, in words.
pub fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => error_chain(e),
        deadpool_postgres::PoolError::Timeout(_) => {
            "no connection to PostgreSQL within the timeout".into()
        }
        other => other.to_string(),
    }
}

/// An error with its sources, for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
