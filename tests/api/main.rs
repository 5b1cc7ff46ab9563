//! The one integration test binary: every test spawns the real teamgate on a free loopback
//! port with its own database (see `helpers`), and talks to it over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod helpers;
mod support;
mod support_selftest;
mod test_idp;
mod test_idp_selftest;
