//! The quick-chat server: builds the axum router (SSR pages, the `/api/v1` server functions,
//! health check) around one [`AppCore`]. `main.rs` runs it; the integration tests start it on
//! port 0 against a fresh database.
#![recursion_limit = "512"]

pub mod cluster;
pub mod config;
pub mod edge;
pub mod media;
pub mod metrics;
pub mod relay;

use std::net::SocketAddr;
use std::sync::Arc;

use app::error::{ApiError, ErrorCode};
use app::ssr::AppCore;
use app::{App, shell};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use leptos::prelude::*;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use tower_http::compression::CompressionLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use config::Config;

/// The error bodies of server functions are at most this large; bigger ones are left alone.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Opens the database (creating the SQLite file's directory) and applies every migration.
pub async fn open_database(config: &Config) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            sea_orm::DbErr::Custom(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
    }
    let mut options = ConnectOptions::new(url);
    let synchronous = config.sqlite_synchronous.pragma();
    options
        .max_connections(config.db_max_connections)
        .sqlx_logging(false)
        // Per-connection settings, so every connection of the pool gets them. WAL lets
        // readers proceed during a write; the busy timeout queues writers instead of failing
        // them at once; the larger page cache keeps the message indexes in memory.
        .map_sqlx_sqlite_opts(move |o| {
            o.pragma("journal_mode", "WAL")
                .pragma("busy_timeout", "5000")
                .pragma("synchronous", synchronous)
                .pragma("cache_size", "-16384")
                // Pages not in that cache are read through a memory map instead of a copy
                // per read (the message indexes are read at random under load).
                .pragma("mmap_size", "1073741824")
                // The message writer checkpoints the log (relay/store.rs) so that no commit
                // has to; this is only the backstop should that fall behind.
                .pragma("wal_autocheckpoint", "262144")
                // After a busy spell the log file is cut back to 64 MB when it starts over.
                .pragma("journal_size_limit", "67108864")
        });
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

/// The Leptos options: cargo-leptos's environment when present, else quick-chat's defaults.
pub fn leptos_options() -> LeptosOptions {
    let mut options = get_configuration(None)
        .map(|c| c.leptos_options)
        .unwrap_or_else(|_| LeptosOptions::builder().output_name("quick-chat").build());
    if options.output_name.is_empty() {
        options.output_name = "quick-chat".into();
    }
    // cargo-leptos writes the content hashes of the site's files beside the server it
    // builds; a server that finds them serves the hashed names (unless told otherwise).
    if std::env::var_os("LEPTOS_HASH_FILES").is_none() {
        options.hash_files = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join(&*options.hash_file)))
            .is_some_and(|file| file.is_file());
    }
    options
}

/// Everything one server process runs: the shared core, the relay and the media store.
pub struct Services {
    pub core: Arc<AppCore>,
    pub relay: Arc<relay::Relay>,
    pub media: Arc<media::Media>,
}

impl Services {
    /// Starts the services on an open database; fails when the media store cannot be
    /// opened (its directory cannot be created, or the S3 settings are incomplete).
    pub fn start(config: &Config, db: DatabaseConnection) -> Result<Self, String> {
        let core = AppCore::new(db, config.settings());
        let cluster = config
            .cluster_settings()
            .map(cluster::Cluster::start)
            .transpose()?;
        if let Some(cluster) = &cluster {
            core.throttle.share(cluster::limits::windows(cluster));
            core.contact_requests
                // Every request counted in Redis: the limit holds exactly.
                .share(cluster::limits::buckets(cluster), "contact", 1);
        }
        let relay = relay::Relay::start(core.clone(), config.relay_settings(), cluster);
        let media = media::Media::start(core.clone(), config.media_settings())?;
        Ok(Self { core, relay, media })
    }
}

/// The app's routes, walked once per process. While Leptos walks them, no resource of the
/// whole process loads (a process-wide flag in `leptos_server`): a page that another router
/// of this process rendered meanwhile waited for ever for the signed-in user. One walk,
/// made before the first router serves, leaves no such window (tests start many servers in
/// one process; `server` starts one).
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole HTTP surface of one server process.
pub fn router(services: &Services, options: LeptosOptions, max_body_bytes: usize) -> Router {
    let routes = route_list();
    let origins = Arc::new(services.relay.settings.allowed_origins.clone());
    let pkg = edge::pkg_service(
        &options.site_root,
        &options.site_pkg_dir,
        options.hash_files,
    );
    let pkg_path = format!("/{}", options.site_pkg_dir.trim_matches('/'));
    Router::new()
        .route("/healthz", get(healthz))
        .leptos_routes(&options, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .route("/api/{*rest}", any(unknown_api))
        .nest_service(&pkg_path, pkg)
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options)
        .layer(axum::middleware::map_response(api_error_status))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(move |req, next| {
            edge::guard_api(origins.clone(), req, next)
        }))
        // Pages, API answers and any file without a precompressed copy; not the WebSocket
        // upgrade below (a 101 has no body to compress).
        .layer(CompressionLayer::new())
        .route("/ws", get(relay::ws_handler))
        // Uploads and downloads stream and answer ranges: not compressed, and they check
        // where a request comes from themselves (the guard above wants JSON bodies).
        .route("/api/v1/media", axum::routing::post(media::upload))
        .route("/api/v1/media/{id}", get(media::download))
        .route("/api/v1/media/{id}/thumb", get(media::thumbnail))
        .layer(Extension(services.media.clone()))
        .layer(axum::middleware::from_fn(edge::security_headers))
        .layer(Extension(services.core.clone()))
        .layer(Extension(services.relay.clone()))
        .layer(
            // One INFO line per request: method, path, status, latency.
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

/// Serves `router` on `listener` until the process ends, with peer addresses available to
/// handlers (the login throttle counts per address).
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    serve_until(listener, router, std::future::pending()).await
}

/// Serves until `stop` completes, then stops accepting and waits for the requests in
/// progress (upgraded WebSockets are the relay's to close).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
}

/// Shuts a server process down gracefully once `signal` completes: the calls held here
/// ended, no new connections, every WebSocket closed with 1012 (clients reconnect at once,
/// elsewhere on a cluster), the requests in progress answered, and every message received
/// stored, within `grace`.
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    router: Router,
    relay: Arc<relay::Relay>,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let closing = relay.clone();
    let stop = async move {
        signal.await;
        let calls = closing.end_calls().await;
        let closed = closing.start_closing();
        tracing::info!(calls, "shutting down: ended the calls held here");
        tracing::info!(closed, "shutting down: closed the WebSockets with 1012");
    };
    let served = serve_until(listener, router, stop).await;
    let left = relay.finish(tokio::time::Instant::now() + grace).await;
    if left > 0 {
        tracing::error!(left, "shut down with messages not stored");
    } else {
        tracing::info!("shut down: every message received is stored");
    }
    served
}

/// `GET /healthz`: 200 when the database answers, 503 otherwise. The status is
/// `degraded` (still 200) while the media store cannot be reached (chat works, uploads and
/// downloads do not) or, on a cluster node, while Redis cannot (chat works; what other
/// nodes send arrives when it is back).
async fn healthz(
    Extension(core): Extension<Arc<AppCore>>,
    Extension(media): Extension<Arc<media::Media>>,
    Extension(relay): Extension<Arc<relay::Relay>>,
) -> Response {
    if let Err(err) = core.db.ping().await {
        tracing::warn!(%err, "health check failed");
        return ApiError::new(ErrorCode::Unavailable, "The database is not answering.")
            .into_response();
    }
    let mut body = serde_json::json!({"status": "ok"});
    if let Err(err) = media.store.exists("healthz").await {
        tracing::warn!(%err, "the media store is not answering");
        body["status"] = "degraded".into();
        body["media"] = "unavailable".into();
    }
    if let Some(cluster) = &relay.cluster
        && !cluster.healthy()
    {
        body["status"] = "degraded".into();
        body["bus"] = "unavailable".into();
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Any `/api/...` path that is not a server function.
async fn unknown_api() -> Response {
    ApiError::not_found("There is no API endpoint at this path.").into_response()
}

/// Server functions answer every error with status 500 and the [`ApiError`] as body; this
/// gives each the status of its code (and `Retry-After` when it has one), in one place.
async fn api_error_status(response: Response) -> Response {
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key("serverfnerror")
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ERROR_BODY_LIMIT).await else {
        return ApiError::internal("unreadable server function error body").into_response();
    };
    if let Ok(err) = serde_json::from_slice::<ApiError>(&bytes) {
        parts.status = StatusCode::from_u16(err.code.status()).unwrap_or(parts.status);
        if let Some(secs) = err.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            parts.headers.insert(axum::http::header::RETRY_AFTER, value);
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, DbBackend};

    /// The SQLite settings hold on every connection of the pool, not only the first.
    #[tokio::test]
    async fn sqlite_settings_apply_to_every_pooled_connection() {
        let dir = std::env::temp_dir().join(format!("qc_pragma_{}", uuid::Uuid::new_v4().simple()));
        let config = Config {
            database_url: Some(format!("sqlite://{}?mode=rwc", dir.join("t.db").display())),
            data_dir: dir.clone(),
            ..Config::default()
        };
        let db = open_database(&config).await.expect("open");
        // Hold several connections at once so that the pool must open more than one.
        let mut held = Vec::new();
        for _ in 0..3 {
            let txn = sea_orm::TransactionTrait::begin(&db).await.expect("begin");
            let row = txn
                .query_one_raw(sea_orm::Statement::from_string(
                    DbBackend::Sqlite,
                    "PRAGMA synchronous",
                ))
                .await
                .expect("query")
                .expect("row");
            let level: i32 = row.try_get_by_index(0).expect("synchronous");
            assert_eq!(level, 1, "NORMAL on every connection");
            held.push(txn);
        }
        drop(held);
        db.close().await.ok();
        let _ = std::fs::remove_dir_all(dir);
    }
}
