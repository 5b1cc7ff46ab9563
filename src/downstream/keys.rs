//! teamgate's signing keys live in [`crate::signing`] (shared by the assertion and the OpenID
//! provider's ID tokens); re-exported here for the forward-auth code that signs with them.

pub use crate::signing::*;
