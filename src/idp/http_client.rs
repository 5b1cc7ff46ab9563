//! The one HTTP client teamgate uses to talk to identity providers: built once at start, with
//! redirects OFF (openidconnect's docs require it against SSRF), the configured timeouts
//! (`server.idp_connect_timeout_seconds`, `server.idp_timeout_seconds`), and a cap on response
//! bodies, adapted to openidconnect's `AsyncHttpClient` interface.

use std::time::Duration;

use openidconnect::{HttpRequest, HttpResponse};

/// Largest response body accepted from an IdP (discovery, JWKS, token, userinfo, Graph).
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IdpHttpError {
    #[error("request to the identity provider failed: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("the identity provider's response is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("cannot build the response: {0}")]
    Http(#[from] http::Error),
}

impl IdpHttpError {
    /// True when the IdP did not answer in time or could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        match self {
            IdpHttpError::Transport(e) => e.is_timeout() || e.is_connect() || e.is_request(),
            _ => false,
        }
    }
}

/// A cloneable client for IdP calls.
#[derive(Clone)]
pub struct IdpHttp {
    client: reqwest::Client,
    timeout: Duration,
}

impl IdpHttp {
    /// `connect`: time to establish a connection; `timeout`: the whole call.
    pub fn new(connect: Duration, timeout: Duration) -> Result<Self, IdpHttpError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect)
            .timeout(timeout)
            .user_agent(concat!("teamgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, timeout })
    }

    /// The time one whole call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The underlying client, for plain JSON calls (Graph, userinfo).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Perform an openidconnect request. The future owns a clone of the client (cheap: an
    /// `Arc` inside) rather than borrowing `self`, so futures holding it stay `Send` for every
    /// lifetime, which axum handlers and `tokio::spawn` require.
    pub fn call(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, IdpHttpError>> + Send + 'static {
        let client = self.client.clone();
        async move {
            let (parts, body) = request.into_parts();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = read_capped(response).await?;
            Ok(builder.body(body)?)
        }
    }
}

/// Read a response body, refusing it once it passes [`MAX_BODY`].
pub async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, IdpHttpError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(IdpHttpError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(IdpHttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
