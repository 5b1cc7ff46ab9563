//! The membership use cases: reconcile a user inside a transaction ([`reconcile`]), sync the
//! config file into the database ([`sync`]), plan and explain against the stored inputs
//! ([`plan`]), find users as administrators name them ([`lookup`]), and the identity view
//! applications receive ([`identity`]). They call the domain and the storage port; they know
//! no HTTP and no SQL.

pub mod identity;
pub mod lookup;
pub mod plan;
pub mod profile;
pub mod reconcile;
pub mod sync;

pub use identity::Identity;
pub use sync::{SyncReport, Synced, sync_at_start, sync_config};
