//! The HTTP API: every server function, each at a stable `/api/v1/...` path with JSON in and
//! out (documented in docs/API.md). Every function that acts for a user authenticates with
//! the session first; the bodies live in `crate::ssr` services.
pub mod call;
pub mod community;
pub mod relation;
pub mod user;
