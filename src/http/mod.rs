//! Routing and HTML/JSON surfaces (being built).
pub mod templates;
pub mod router;
