//! The built-in demo OpenID provider (being built).
