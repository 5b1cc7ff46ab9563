//! The OpenID Connect relying party's HTTP adapter: `/login` (start the authorization code
//! flow with PKCE, state and nonce), `/callback/{provider}` (check the answer and hand the
//! verified login to [`crate::signin`]), and `POST /logout`. The flow itself is built on the
//! `openidconnect` crate and the IdP client of [`crate::idp`].
//!
//! - [`routes`]: the handlers; [`flow`]: start and finish of the code flow.
//! - [`pending`]: logins in flight, kept server-side in the pre-login session.
//! - [`refusal`]: how a refused sign-in is answered.

pub mod flow;
pub mod pending;
pub mod refusal;
pub mod routes;
