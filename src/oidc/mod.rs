//! OpenID Connect relying party (being built).
