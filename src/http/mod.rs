//! The HTTP surface: router assembly, request ids, the HTML error page, the login routes,
//! the user pages, return-URL checks and templates.

pub mod error;
pub mod login_routes;
pub mod pages;
pub mod redirect;
pub mod request_id;
pub mod router;
pub mod templates;
