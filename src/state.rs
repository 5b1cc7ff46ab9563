//! The one cloneable state every handler receives: the config in force, the store, the
//! templates, the clock, and handles to the use cases. Built by [`crate::app`]; it holds no
//! adapter, so every adapter can take it.

use std::sync::Arc;

use crate::authorize::Authorize;
use crate::config::LiveConfig;
use crate::domain::Clock;
use crate::idp::Providers;
use crate::provisioning::Provisioning;
use crate::signin::SignIn;
use crate::store::Store;
use crate::web::rate_limit::RateLimit;
use crate::web::templates::Templates;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<LiveConfig>,
    pub store: Store,
    pub templates: Arc<Templates>,
    pub clock: Clock,
    /// Discovery and JWKS caches of the identity providers.
    pub providers: Arc<Providers>,
    /// Completing logins and re-evaluating groups.
    pub signin: SignIn,
    /// The SCIM operations.
    pub provisioning: Provisioning,
    /// The per-client-address limit of `/login` (`server.login_rate_per_minute`).
    pub login_limit: Arc<RateLimit>,
    /// Signing users in to applications (teamgate as an OpenID provider).
    pub authorize: Authorize,
}
