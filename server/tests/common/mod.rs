//! A real quick-chat server for integration tests: port 0, a fresh database per test.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL and MariaDB run when
//! `QC_TEST_POSTGRES_URL` / `QC_TEST_MYSQL_URL` name a server (e.g.
//! `postgres://postgres@127.0.0.1:5432`, `mysql://root@127.0.0.1:3306`); each test then
//! creates its own database `qc_t_<random>` there. `QC_TEST_REQUIRE_ALL=1` turns a missing
//! URL into a failure instead of a skip, so CI cannot silently test less.
#![allow(dead_code)]

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
    pub base: String,
    pub client: reqwest::Client,
    pub core: std::sync::Arc<AppCore>,
    pub backend: Backend,
    pub database_url: String,
    _dir: Option<TempDir>,
}

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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
            Some((url, Some(TempDir(dir))))
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
            let db = Database::connect(admin)
                .await
                .expect("connect to the test database server");
            db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            db.close().await.ok();
            Some((format!("{base}/{name}"), None))
        }
    }
}

impl TestServer {
    /// A server with default settings, or `None` when the backend is not configured.
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    /// A server whose configuration `tweak` may change first.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<Self> {
        let (url, dir) = fresh_database(backend).await?;
        let mut config = Config {
            database_url: Some(url.clone()),
            ..Config::default()
        };
        tweak(&mut config);
        let db = server::open_database(&config)
            .await
            .expect("open and migrate the database");
        let core = AppCore::new(db, config.settings());
        let router = server::router(
            core.clone(),
            server::leptos_options(),
            config.max_body_bytes,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(server::serve(listener, router));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Some(Self {
            base: format!("http://{addr}"),
            client,
            core,
            backend,
            database_url: url,
            _dir: dir,
        })
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
        let mut req = self
            .server
            .client
            .post(format!("{}{path}", self.server.base))
            .header(CONTENT_TYPE, content_type)
            .body(body);
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
