//! Server-only code: database access, sessions, and the shared [`AppCore`].
//!
//! Compiled only with the `ssr` feature. Nothing here may shape what a view renders:
//! components learn about the server only through server functions.
pub mod accounts;
pub mod auth;
pub mod calls;
pub mod communities;
pub mod entity;
pub mod messages;
pub mod relations;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};

use crate::error::{ApiError, ErrorCode};

/// The settings the request handlers need; the server's typed config builds it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Mark the session cookie `Secure` (serve over HTTPS when this is on).
    pub cookie_secure: bool,
    /// How long a login lasts.
    pub session_ttl: Duration,
    /// Failed logins allowed per username within `login_window` before HTTP 429.
    pub login_max_failures_per_user: u32,
    /// Failed logins allowed per client address within `login_window` before HTTP 429.
    pub login_max_failures_per_ip: u32,
    pub login_window: Duration,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy_headers: bool,
    /// Most members a group may have, its owner included.
    pub group_max_members: u64,
    /// STUN and TURN servers for calls.
    pub ice: IceSettings,
}

/// Where browsers find STUN and TURN servers for calls.
#[derive(Debug, Clone, Default)]
pub struct IceSettings {
    pub stun_urls: Vec<String>,
    pub turn_urls: Vec<String>,
    /// Shared with the TURN server; credentials are minted from it per user.
    pub turn_secret: String,
    pub turn_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cookie_secure: false,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            login_max_failures_per_user: 5,
            login_max_failures_per_ip: 20,
            login_window: Duration::from_secs(15 * 60),
            trust_proxy_headers: false,
            group_max_members: 500,
            ice: IceSettings {
                turn_ttl: Duration::from_secs(24 * 3600),
                ..IceSettings::default()
            },
        }
    }
}

/// A change in whom a user is related to, announced after it is committed: the relay
/// forwards it to the user's open sessions (as a `relation` frame) and forgets what it had
/// cached about who may message whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationEvent {
    /// Who should hear about it.
    pub user: uuid::Uuid,
    pub change: crate::protocol::RelationChange,
    /// The other person, when there is one.
    pub username: Option<String>,
    pub community_id: Option<uuid::Uuid>,
}

/// Everything a request handler shares: the database, the settings, the login throttle, and
/// the channel on which relation changes are announced. The server puts one `Arc<AppCore>`
/// into every request's extensions.
pub struct AppCore {
    pub db: DatabaseConnection,
    pub settings: Settings,
    pub throttle: throttle::LoginThrottle,
    pub events: tokio::sync::broadcast::Sender<Vec<RelationEvent>>,
    /// Moves on every announced change, before the request that made it answers: caches
    /// of who may message whom compare against it and so never serve a stale answer.
    pub relations_version: std::sync::atomic::AtomicU64,
}

impl AppCore {
    pub fn new(db: DatabaseConnection, settings: Settings) -> Arc<Self> {
        let throttle = throttle::LoginThrottle::new(
            settings.login_max_failures_per_user,
            settings.login_max_failures_per_ip,
            settings.login_window,
        );
        let (events, _) = tokio::sync::broadcast::channel(1024);
        Arc::new(Self {
            db,
            settings,
            throttle,
            events,
            relations_version: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Announces committed relation changes (nobody listening is fine).
    pub fn announce(&self, events: Vec<RelationEvent>) {
        self.relations_version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if !events.is_empty() {
            let _ = self.events.send(events);
        }
    }
}

/// The shared core of the request being served (from the request's extensions).
pub fn core() -> Result<Arc<AppCore>, ApiError> {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<AppCore>>().cloned())
        .ok_or_else(|| ApiError::internal("AppCore missing from request extensions"))
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                tracing::error!(%err, "database unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "The database is not answering. Please try again.",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = http::StatusCode::from_u16(self.code.status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, axum::Json(&self)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = http::HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(http::header::RETRY_AFTER, value);
        }
        res
    }
}
