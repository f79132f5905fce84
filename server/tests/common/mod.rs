//! A real quick-chat server for integration tests: port 0, a fresh database per test.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL and MariaDB run when
//! `QC_TEST_POSTGRES_URL` / `QC_TEST_MYSQL_URL` name a server (e.g.
//! `postgres://postgres@127.0.0.1:5432`, `mysql://root@127.0.0.1:3306`); each test then
//! creates its own database `qc_t_<random>` there. `QC_TEST_REQUIRE_ALL=1` turns a missing
//! URL into a failure instead of a skip, so CI cannot silently test less.
#![allow(dead_code)]

pub mod people;

use std::path::PathBuf;

use app::ssr::{AppCore, Settings};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, SET_COOKIE};
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;
use server::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    fn env_key(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("QC_TEST_POSTGRES_URL"),
            Backend::MySql => Some("QC_TEST_MYSQL_URL"),
        }
    }
}

pub struct TestServer {
    pub config: Config,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    pub base: String,
    pub client: reqwest::Client,
    pub core: std::sync::Arc<AppCore>,
    pub media: std::sync::Arc<server::media::Media>,
    /// `GET /metrics` of this server (served on its own address in production).
    pub metrics: axum::Router,
    pub backend: Backend,
    pub database_url: String,
    _dir: Option<TempDir>,
    /// `DATA_DIR`: uploads go here.
    _data: TempDir,
}

/// What a test's database leaves behind, removed when the test ends: the SQLite file's
/// directory, or the database on a PostgreSQL or MariaDB server shared by every run.
enum TempDir {
    /// Another node's: removed with that node.
    Shared,
    Dir(PathBuf),
    Database {
        admin: String,
        name: String,
        backend: Backend,
    },
}

impl Drop for TempDir {
    fn drop(&mut self) {
        match self {
            TempDir::Shared => {}
            TempDir::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TempDir::Database {
                admin,
                name,
                backend,
            } => {
                let sql = if *backend == Backend::Postgres {
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                } else {
                    format!("DROP DATABASE IF EXISTS {name}")
                };
                let admin = admin.clone();
                // Drop runs inside the test's runtime; the cleanup gets a runtime of its own.
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async {
                        if let Ok(db) = Database::connect(admin).await {
                            let _ = db.execute_unprepared(&sql).await;
                            let _ = db.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

fn random_name() -> String {
    format!("qc_t_{}", uuid::Uuid::new_v4().simple())
}

/// Creates an empty database for one test and returns its URL, or `None` to skip.
async fn fresh_database(backend: Backend) -> Option<(String, Option<TempDir>)> {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(random_name());
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
            Some((url, Some(TempDir::Dir(dir))))
        }
        Backend::Postgres | Backend::MySql => {
            let key = backend.env_key()?;
            let Ok(base) = std::env::var(key) else {
                if std::env::var("QC_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1") {
                    panic!("{key} is not set but QC_TEST_REQUIRE_ALL=1");
                }
                eprintln!("skipping: {key} is not set");
                return None;
            };
            let base = base.trim_end_matches('/').to_owned();
            let admin = if backend == Backend::Postgres {
                format!("{base}/postgres")
            } else {
                base.clone()
            };
            let name = random_name();
            let db = Database::connect(admin.clone())
                .await
                .expect("connect to the test database server");
            db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            db.close().await.ok();
            let url = format!("{base}/{name}");
            Some((
                url,
                Some(TempDir::Database {
                    admin,
                    name,
                    backend,
                }),
            ))
        }
    }
}

/// Opens the database, starts the services and serves them on a fresh port.
async fn launch(
    config: &Config,
) -> (
    String,
    tokio::task::JoinHandle<std::io::Result<()>>,
    std::sync::Arc<AppCore>,
    std::sync::Arc<server::media::Media>,
    axum::Router,
) {
    // `QC_TEST_LOG=server=debug` shows the server's log with the test's output.
    if let Ok(filter) = std::env::var("QC_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let db = server::open_database(config)
        .await
        .expect("open and migrate the database");
    let services = server::Services::start(config, db).expect("start the services");
    let router = server::router(&services, server::leptos_options(), config.max_body_bytes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let handle = tokio::spawn(server::serve(listener, router));
    (
        format!("http://{addr}"),
        handle,
        services.core.clone(),
        services.media.clone(),
        server::metrics::router(&services),
    )
}

impl TestServer {
    /// A server with default settings, or `None` when the backend is not configured.
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    /// A server whose configuration `tweak` may change first.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<Self> {
        let (url, dir) = fresh_database(backend).await?;
        let data = std::env::temp_dir().join(random_name());
        let mut config = Config {
            database_url: Some(url.clone()),
            data_dir: data.clone(),
            // Every test registers its users from 127.0.0.1 and sends what requests it
            // needs; the tests of these limits set them low again.
            register_max_per_ip: 10_000,
            contact_requests_per_hour: 100_000,
            ..Config::default()
        };
        tweak(&mut config);
        let (base, handle, core, media, metrics) = launch(&config).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A hung server fails the test instead of hanging the run.
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("http client");
        Some(Self {
            base,
            client,
            core,
            media,
            metrics,
            backend,
            database_url: url,
            config,
            handle,
            _dir: dir,
            _data: TempDir::Dir(data),
        })
    }

    /// Stops this server process and starts a new one on the same database (and a new
    /// port): what a restart or a crash looks like to clients.
    pub async fn restart(&mut self) {
        self.handle.abort();
        let _ = (&mut self.handle).await;
        let (base, handle, core, media, metrics) = launch(&self.config).await;
        self.base = base;
        self.handle = handle;
        self.core = core;
        self.media = media;
        self.metrics = metrics;
    }

    /// Another node of this server's cluster: same configuration, database and media
    /// directory, its own process state and port.
    pub async fn node(&self) -> Self {
        let (base, handle, core, media, metrics) = launch(&self.config).await;
        Self {
            base,
            client: self.client.clone(),
            core,
            media,
            metrics,
            backend: self.backend,
            database_url: self.database_url.clone(),
            config: self.config.clone(),
            handle,
            _dir: Some(TempDir::Shared),
            _data: TempDir::Shared,
        }
    }

    /// What `GET /metrics` answers now.
    pub async fn metrics_text(&self) -> String {
        use tower::ServiceExt;
        let request = axum::http::Request::get("/metrics")
            .body(axum::body::Body::empty())
            .expect("request");
        let response = self
            .metrics
            .clone()
            .oneshot(request)
            .await
            .expect("metrics answer");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("metrics body");
        String::from_utf8(body.to_vec()).expect("text")
    }

    /// The WebSocket URL of this server.
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http://", "ws://", 1))
    }

    pub fn settings(&self) -> &Settings {
        &self.core.settings
    }

    /// A browser-like user agent with its own cookie.
    pub fn session(&self) -> Session<'_> {
        Session {
            server: self,
            cookie: None,
        }
    }
}

/// One client's view: remembers the session cookie the server sets.
pub struct Session<'a> {
    pub server: &'a TestServer,
    pub cookie: Option<String>,
}

/// What came back from one request.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("<no code>")
    }

    /// Asserts a 400 `invalid_field` naming `field`; `what` says which request it was.
    pub fn assert_invalid_field(&self, field: &str, what: &str) {
        assert_eq!(
            self.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            self.text
        );
        assert_eq!(self.code(), "invalid_field", "{what}");
        assert_eq!(self.body["field"], field, "{what}");
    }

    /// All `Set-Cookie` values.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

impl Session<'_> {
    /// POSTs raw bytes with a content type; keeps any session cookie the answer sets.
    pub async fn post_raw(&mut self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        self.post_with(path, content_type, body, &[]).await
    }

    /// POSTs JSON with extra headers (`Origin`, `X-Forwarded-For`, …).
    pub async fn post_json_with(
        &mut self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.post_with(
            path,
            "application/json",
            body.to_string().into_bytes(),
            headers,
        )
        .await
    }

    /// POSTs raw bytes with a content type and extra headers.
    pub async fn post_with(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        // Large bodies get a connection of their own: the server closes a connection whose
        // body it refused, which must not break the next request on a shared one.
        let client = if body.len() > 64 * 1024 {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("http client")
        } else {
            self.server.client.clone()
        };
        let mut req = client
            .post(format!("{}{path}", self.server.base))
            .header(CONTENT_TYPE, content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(cookie) = &self.cookie {
            req = req.header(COOKIE, format!("qc_session={cookie}"));
        }
        let res = req.send().await.expect("request");
        self.finish(res).await
    }

    /// POSTs JSON.
    pub async fn post(&mut self, path: &str, body: Value) -> Answer {
        self.post_raw(path, "application/json", body.to_string().into_bytes())
            .await
    }

    /// GETs a page as a browser does (accepting HTML), with extra headers.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = self
            .server
            .client
            .get(format!("{}{path}", self.server.base))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(cookie) = &self.cookie {
            req = req.header(COOKIE, format!("qc_session={cookie}"));
        }
        let res = req.send().await.expect("request");
        self.finish(res).await
    }

    async fn finish(&mut self, res: reqwest::Response) -> Answer {
        let status = res.status();
        let headers = res.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            if let Some(rest) = value.strip_prefix("qc_session=") {
                let token = rest.split(';').next().unwrap_or("");
                self.cookie = if token.is_empty() {
                    None
                } else {
                    Some(token.to_owned())
                };
            }
        }
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// Registers `username` with a standard password and keeps its cookie.
    pub async fn register(&mut self, username: &str) -> Answer {
        let nickname = format!("Nick {username}");
        let answer = self
            .post(
                "/api/v1/user/register",
                serde_json::json!({"username": username, "nickname": nickname, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "register {username}: {}",
            answer.text
        );
        answer
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Answer {
        self.post(
            "/api/v1/user/login",
            serde_json::json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn me(&mut self) -> Answer {
        self.post("/api/v1/user/me", serde_json::json!({})).await
    }
}

/// The Redis of the cluster tests (`QC_TEST_REDIS_URL`, e.g. `redis://127.0.0.1:6379`),
/// or `None` to skip them (a failure with `QC_TEST_REQUIRE_ALL=1`).
pub fn redis_url() -> Option<String> {
    match std::env::var("QC_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            if std::env::var("QC_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1") {
                panic!("QC_TEST_REDIS_URL is not set but QC_TEST_REQUIRE_ALL=1");
            }
            eprintln!("skipping: QC_TEST_REDIS_URL is not set");
            None
        }
    }
}

/// `n` nodes of one cluster on a fresh `backend` database and `redis` (keys and channels
/// under a prefix of the test's own), each configured further by `tweak`.
pub async fn cluster_on(
    backend: Backend,
    redis: &str,
    n: usize,
    tweak: impl FnOnce(&mut Config),
) -> Option<Vec<TestServer>> {
    let prefix = random_name();
    let first = TestServer::start_with(backend, |c| {
        c.redis_url = redis.to_owned();
        c.redis_prefix = prefix;
        c.cluster_node_ttl_secs = 3;
        tweak(c);
    })
    .await?;
    let mut nodes = vec![first];
    for _ in 1..n {
        let node = nodes[0].node().await;
        nodes.push(node);
    }
    // Each node is listening on the bus before the test starts.
    for node in &nodes {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let health = node.session().get("/healthz", &[]).await;
            if health.body["status"] == "ok" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "a node did not join the bus: {}",
                health.text
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Some(nodes)
}

/// `n` nodes of one cluster on the machine's Redis (see [`cluster_on`]).
pub async fn cluster(backend: Backend, n: usize) -> Option<Vec<TestServer>> {
    cluster_with(backend, n, |_| {}).await
}

/// [`cluster`] with each node's configuration changed by `tweak`.
pub async fn cluster_with(
    backend: Backend,
    n: usize,
    tweak: impl FnOnce(&mut Config),
) -> Option<Vec<TestServer>> {
    let redis = redis_url()?;
    cluster_on(backend, &redis, n, tweak).await
}

/// Expands each test `fn name(nodes: Vec<TestServer>)` into one `#[tokio::test]` per shared
/// database, with three nodes on the machine's Redis: `postgres::name`, `mysql::name`.
#[macro_export]
macro_rules! cluster_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(nodes) = $crate::common::cluster($crate::common::Backend::Postgres, 3).await {
                    super::$name(nodes).await;
                }
            })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(nodes) = $crate::common::cluster($crate::common::Backend::MySql, 3).await {
                    super::$name(nodes).await;
                }
            })*
        }
    };
}

/// Expands each test `fn name(backend: Backend)` (which sets up its own cluster) into one
/// `#[tokio::test]` per shared database: `on_postgres::name`, `on_mysql::name`.
#[macro_export]
macro_rules! shared_database_tests {
    ($($name:ident),* $(,)?) => {
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name($crate::common::Backend::Postgres).await;
            })*
        }
        mod on_mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name($crate::common::Backend::MySql).await;
            })*
        }
    };
}

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery";

/// Expands each test `fn name(server: TestServer)` into one `#[tokio::test]` per backend:
/// `sqlite::name`, `postgres::name`, `mysql::name`.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(s) = $crate::common::TestServer::start($crate::common::Backend::Sqlite).await {
                    super::$name(s).await;
                }
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(s) = $crate::common::TestServer::start($crate::common::Backend::Postgres).await {
                    super::$name(s).await;
                }
            })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(s) = $crate::common::TestServer::start($crate::common::Backend::MySql).await {
                    super::$name(s).await;
                }
            })*
        }
    };
}

/// A WebSocket client of the relay, as a test drives it.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// How long a test waits for a frame it expects.
pub const FRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Ws {
    /// Connects with a session cookie (and optional extra headers); panics unless upgraded.
    pub async fn connect(server: &TestServer, cookie: &str) -> Ws {
        Self::try_connect(server, Some(cookie), &[])
            .await
            .expect("websocket upgrade")
    }

    /// Connects, answering the HTTP status when the upgrade is refused.
    pub async fn try_connect(
        server: &TestServer,
        cookie: Option<&str>,
        headers: &[(&'static str, &str)],
    ) -> Result<Ws, u16> {
        Self::try_connect_url(&server.ws_url(), cookie, headers).await
    }

    /// [`Ws::try_connect`] to the server at `url` (`ws://…/ws`).
    pub async fn try_connect_url(
        url: &str,
        cookie: Option<&str>,
        headers: &[(&'static str, &str)],
    ) -> Result<Ws, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().expect("request");
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("cookie", format!("qc_session={cookie}").parse().unwrap());
        }
        for (k, v) in headers {
            request.headers_mut().insert(*k, v.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => Ok(Ws { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
            Err(other) => panic!("websocket connect: {other}"),
        }
    }

    /// Connects with a tiny socket receive buffer, like a client on a congested link: what
    /// it does not read backs up on the server quickly instead of in the kernel.
    pub async fn connect_with_small_buffer(server: &TestServer, cookie: &str) -> Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = server.ws_url().into_client_request().expect("request");
        request
            .headers_mut()
            .insert("cookie", format!("qc_session={cookie}").parse().unwrap());
        let addr: std::net::SocketAddr = server
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("server address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let tcp = socket.connect(addr).await.expect("connect");
        let (stream, _) =
            tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
                .await
                .expect("websocket upgrade");
        Ws { stream }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.try_send_text(text).await.expect("send frame");
    }

    /// Sends a frame where the server may already have closed the connection.
    pub async fn try_send_text(
        &mut self,
        text: &str,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        use futures_util::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        use futures_util::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::Binary(
                bytes.into(),
            ))
            .await
            .expect("send frame");
    }

    /// The next text frame as JSON, or `None` if the socket closed; panics after
    /// [`FRAME_WAIT`].
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(FRAME_WAIT)
            .await
            .expect("a frame within the wait")
    }

    /// The next text frame within `wait`: `Err(())` on timeout, `Ok(None)` when closed.
    pub async fn next_within(&mut self, wait: std::time::Duration) -> Result<Option<Value>, ()> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .map_err(|_| ())?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Ok(Some(serde_json::from_str(&text).expect("frames are JSON")));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(None),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Skips frames until one of type `kind` arrives.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .next()
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {kind}"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Asserts that no frame of type `kind` arrives within `ms` (other frames are skipped).
    pub async fn none_of(&mut self, kind: &str, ms: u64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Err(()) | Ok(None) => return,
                Ok(Some(frame)) => assert_ne!(frame["type"], kind, "unexpected {frame}"),
            }
        }
    }

    /// How the server ended the connection, waiting up to `wait`: `Ok(Some(code))` for a
    /// close frame, `Ok(None)` when the socket just ended, `Err(())` if it is still open.
    pub async fn close_code(&mut self, wait: std::time::Duration) -> Result<Option<u16>, ()> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Err(()),
                Ok(Some(Ok(Message::Close(frame)))) => return Ok(frame.map(|f| u16::from(f.code))),
                Ok(Some(Ok(_))) => continue,
                Ok(None) | Ok(Some(Err(_))) => return Ok(None),
            }
        }
    }

    /// Every text frame until the connection ends (within `wait`), and the close code if
    /// the server sent one.
    pub async fn until_closed(&mut self, wait: std::time::Duration) -> (Vec<Value>, Option<u16>) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    frames.push(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return (frames, frame.map(|f| u16::from(f.code)));
                }
                Ok(Some(Ok(_))) => continue,
                Ok(None) | Ok(Some(Err(_))) => return (frames, None),
                Err(_) => panic!("still open after {wait:?}"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
