//! Server-only code: database access, sessions, and the shared [`AppCore`].
//!
//! Compiled only with the `ssr` feature. Nothing here may shape what a view renders:
//! components learn about the server only through server functions.
pub mod accounts;
pub mod auth;
pub mod calls;
pub mod communities;
pub mod entity;
pub mod media;
pub mod messages;
pub mod permissions;
pub mod rate;
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
    /// The allowances of logins, registrations and password checks.
    pub throttle: throttle::Limits,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy_headers: bool,
    /// The proxies in front of the server; empty: exactly one, which appends the client's
    /// address as the last `X-Forwarded-For` entry.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Most members a group may have, its owner included.
    pub group_max_members: u64,
    /// Friend and join requests a user may send per hour (and at once).
    pub contact_requests_per_hour: u32,
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
            throttle: throttle::Limits::default(),
            trust_proxy_headers: false,
            trusted_proxies: Vec::new(),
            group_max_members: 500,
            contact_requests_per_hour: 30,
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RelationEvent {
    /// Who should hear about it.
    pub user: uuid::Uuid,
    pub change: crate::protocol::RelationChange,
    /// The other person, when there is one.
    pub username: Option<String>,
    pub community_id: Option<uuid::Uuid>,
}

/// Which sessions of a user ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EndedSessions {
    /// This one (logout, revoked from the session list).
    One(String),
    /// All but this one (password change, "sign out everywhere else").
    AllBut(String),
    /// All of them (account suspended).
    All,
}

impl EndedSessions {
    /// Whether the session `id` is among them.
    pub fn includes(&self, id: &str) -> bool {
        match self {
            EndedSessions::One(one) => one == id,
            EndedSessions::AllBut(kept) => kept != id,
            EndedSessions::All => true,
        }
    }
}

/// Sessions ended on the server, announced after the change is committed: the relay closes
/// their open sockets at once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionsEnded {
    pub user: uuid::Uuid,
    pub which: EndedSessions,
}

/// Everything a request handler shares: the database, the settings, the throttles, the
/// permission cache, and the channels on which relation changes and ended sessions are
/// announced. The server puts one `Arc<AppCore>` into every request's extensions.
pub struct AppCore {
    pub db: DatabaseConnection,
    pub settings: Settings,
    pub throttle: throttle::Throttle,
    pub events: tokio::sync::broadcast::Sender<Vec<RelationEvent>>,
    /// Who may message whom, cached; [`AppCore::announce`] keeps it true.
    pub permissions: permissions::Permissions,
    pub sessions_ended: tokio::sync::broadcast::Sender<SessionsEnded>,
    /// Friend and join requests per user.
    pub contact_requests: rate::Buckets<uuid::Uuid>,
}

impl AppCore {
    pub fn new(db: DatabaseConnection, settings: Settings) -> Arc<Self> {
        let throttle = throttle::Throttle::new(settings.throttle.clone());
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let (sessions_ended, _) = tokio::sync::broadcast::channel(1024);
        let per_hour = f64::from(settings.contact_requests_per_hour.max(1));
        let contact_requests = rate::Buckets::new(per_hour / 3600.0, (per_hour / 3.0).max(1.0));
        Arc::new(Self {
            db,
            settings,
            throttle,
            events,
            permissions: permissions::Permissions::default(),
            sessions_ended,
            contact_requests,
        })
    }

    /// Announces committed relation changes (nobody listening is fine). The permission
    /// cache forgets what they touch before this returns.
    pub fn announce(&self, events: Vec<RelationEvent>) {
        self.permissions.forget(&events);
        if !events.is_empty() {
            let _ = self.events.send(events);
        }
    }

    /// Announces committed session endings (the relay closes their sockets).
    pub fn sessions_ended(&self, user: uuid::Uuid, which: EndedSessions) {
        let _ = self.sessions_ended.send(SessionsEnded { user, which });
    }

    /// Takes one of `user`'s contact requests (friend or join), or says when to try again.
    pub async fn contact_request_allowed(&self, user: uuid::Uuid) -> Result<(), ApiError> {
        self.contact_requests
            .take_anywhere(&user)
            .await
            .map_err(|wait| ApiError {
                message: "You have sent many requests. Please wait before sending more.".into(),
                ..ApiError::too_many(wait.as_secs() + 1)
            })
    }
}

/// The Content-Security-Policy of a page whose inline scripts carry `nonce`: scripts only
/// from this site or with the nonce, WebAssembly compiled, no inline styles, no plugins, no
/// framing, forms and connections only to this site. `reload` adds cargo-leptos's
/// live-reload socket during `cargo leptos watch`.
pub fn content_security_policy(nonce: &str, reload: Option<&str>) -> String {
    let reload = reload.map(|r| format!(" {r}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data: blob: https:; media-src 'self' blob:; \
         connect-src 'self'{reload}; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Sets the page's Content-Security-Policy header with the nonce leptos_axum generated for
/// this response (its hydration and resource scripts carry it).
pub fn set_page_policy(options: &leptos::prelude::LeptosOptions) {
    let Some(nonce) = leptos::nonce::use_nonce() else {
        return;
    };
    let reload = std::env::var("LEPTOS_WATCH")
        .is_ok()
        .then(|| format!("ws://{}:{}", options.site_addr.ip(), options.reload_port));
    let policy = content_security_policy(&nonce, reload.as_deref());
    if let (Some(res), Ok(value)) = (
        leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
        http::HeaderValue::from_str(&policy),
    ) {
        res.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The shared core of the request being served (from the request's extensions).
pub fn core() -> Result<Arc<AppCore>, ApiError> {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<AppCore>>().cloned())
        .ok_or_else(|| ApiError::internal("AppCore missing from request extensions"))
}

/// Begins a transaction that will write: on SQLite it takes the write lock at once, so two
/// such transactions queue instead of failing when the second one tries to write.
pub async fn write_txn(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, ApiError> {
    use sea_orm::TransactionTrait;
    let options = sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    Ok(db.begin_with_options(options).await?)
}

/// A read-only transaction whose reads all see one snapshot of the database (repeatable
/// read; on SQLite every transaction is one).
pub async fn read_snapshot(
    db: &DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, ApiError> {
    use sea_orm::{AccessMode, IsolationLevel, TransactionTrait};
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        return Ok(db.begin().await?);
    }
    Ok(db
        .begin_with_config(
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        )
        .await?)
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_allows_what_the_app_needs_and_nothing_inline() {
        let csp = super::content_security_policy("abc", None);
        assert!(csp.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        let dev = super::content_security_policy("abc", Some("ws://127.0.0.1:3001"));
        assert!(dev.contains("connect-src 'self' ws://127.0.0.1:3001;"));
    }
}
