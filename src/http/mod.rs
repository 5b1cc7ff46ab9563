//! Routing and HTML/JSON surfaces (being built).
