//! The server's typed configuration: defaults, then an optional TOML file, then environment
//! variables (each key's upper-case name). Every key is listed with its default in README.md.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Environment variables read into [`Config`]; TOML keys are the same names in lower case.
pub const ENV_KEYS: &[&str] = &[
    "BIND_ADDR",
    "DATABASE_URL",
    "DATA_DIR",
    "COOKIE_SECURE",
    "SESSION_TTL_SECS",
    "LOG_LEVEL",
    "LOGIN_MAX_FAILURES",
    "LOGIN_MAX_FAILURES_PER_IP",
    "LOGIN_MAX_FAILURES_PER_ACCOUNT",
    "LOGIN_WINDOW_SECS",
    "REGISTER_MAX_PER_IP",
    "REGISTER_WINDOW_SECS",
    "CONTACT_REQUESTS_PER_HOUR",
    "TRUST_PROXY_HEADERS",
    "TRUSTED_PROXIES",
    "MAX_BODY_BYTES",
    "DB_MAX_CONNECTIONS",
    "GROUP_MAX_MEMBERS",
    "ALLOWED_ORIGINS",
    "WS_SEND_RATE",
    "WS_SEND_BURST",
    "WS_FRAME_RATE",
    "WS_FRAME_BURST",
    "WS_MAX_CONNECTIONS_PER_USER",
    "WS_SESSION_CHECK_SECS",
    "WS_IDLE_TIMEOUT_SECS",
    "WS_PING_SECS",
    "WS_QUEUE",
    "SQLITE_SYNCHRONOUS",
    "CALL_RING_SECS",
    "CALL_RESUME_SECS",
    "STUN_URLS",
    "TURN_URLS",
    "TURN_SECRET",
    "TURN_TTL_SECS",
    "MAX_UPLOAD_BYTES",
    "MEDIA_QUOTA_BYTES",
    "MEDIA_UPLOADS_PER_HOUR",
    "MEDIA_UNSENT_TTL_SECS",
    "MEDIA_STORE",
    "S3_ENDPOINT",
    "S3_BUCKET",
    "S3_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "REDIS_URL",
    "REDIS_PREFIX",
    "CLUSTER_NODE_TTL_SECS",
    "METRICS_ADDR",
];

/// Where uploaded media is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MediaStoreKind {
    /// `DATA_DIR/media`.
    #[default]
    Local,
    /// An S3-compatible object store (`S3_*` settings).
    S3,
}

/// How hard SQLite works to make each commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// Commits survive a crash of quick-chat; a power cut may lose the last moments.
    #[default]
    Normal,
    /// Every commit waits for the disk (slower: one fsync per batch of messages).
    Full,
}

impl SqliteSynchronous {
    pub fn pragma(self) -> &'static str {
        match self {
            SqliteSynchronous::Normal => "NORMAL",
            SqliteSynchronous::Full => "FULL",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on. Unset: cargo-leptos's `LEPTOS_SITE_ADDR`, else 127.0.0.1:3000.
    pub bind_addr: Option<SocketAddr>,
    /// Unset: a SQLite file `quick-chat.db` in `data_dir`, created on first start.
    pub database_url: Option<String>,
    /// Where the SQLite file and uploads (`media/`, `tmp/`) live; created if missing.
    pub data_dir: PathBuf,
    /// Mark the session cookie `Secure` (turn on when serving over HTTPS).
    pub cookie_secure: bool,
    /// How long a login lasts, in seconds.
    pub session_ttl_secs: u64,
    /// `tracing` filter when `RUST_LOG` is not set, e.g. `info` or `quick_chat=debug`.
    pub log_level: String,
    /// Failed logins per username from one address within the window before HTTP 429.
    pub login_max_failures: u32,
    /// Failed logins per client address within the window before HTTP 429.
    pub login_max_failures_per_ip: u32,
    /// Failed logins per username from all addresses within the window (addresses the
    /// account signed in from before are exempt).
    pub login_max_failures_per_account: u32,
    pub login_window_secs: u64,
    /// Accounts one address may create within `register_window_secs`.
    pub register_max_per_ip: u32,
    pub register_window_secs: u64,
    /// Friend and join requests a user may send per hour.
    pub contact_requests_per_hour: u32,
    /// Trust `X-Forwarded-For` for the client address (only behind your own proxy).
    pub trust_proxy_headers: bool,
    /// Comma-separated addresses or networks (CIDR) of the proxies in front; empty: one.
    pub trusted_proxies: String,
    /// Largest API request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Database connection pool size.
    pub db_max_connections: u32,
    /// Most members a group may have, its owner included.
    pub group_max_members: u64,
    /// Comma-separated origins, besides the server's own, that may open the WebSocket.
    pub allowed_origins: String,
    /// Messages per second a user may send, sustained, and in a burst.
    pub ws_send_rate: u32,
    pub ws_send_burst: u32,
    /// Other frames per second a user may send, sustained, and in a burst.
    pub ws_frame_rate: u32,
    pub ws_frame_burst: u32,
    /// Most WebSockets one user may have open at once.
    pub ws_max_connections_per_user: usize,
    /// How often open WebSockets' sessions are checked against the database.
    pub ws_session_check_secs: u64,
    /// A WebSocket silent this long is closed (the browser pings every 25 s).
    pub ws_idle_timeout_secs: u64,
    /// How often the server pings each WebSocket.
    pub ws_ping_secs: u64,
    /// Frames waiting for one WebSocket before it counts as too slow and is closed.
    pub ws_queue: usize,
    /// SQLite's `synchronous` setting: `normal` or `full`.
    pub sqlite_synchronous: SqliteSynchronous,
    /// Seconds a call rings before it counts as missed.
    pub call_ring_secs: u64,
    /// Seconds an answered call waits for a side whose connection dropped to come back.
    pub call_resume_secs: u64,
    /// STUN servers for calls, comma-separated (`stun:host:port`); none by default.
    pub stun_urls: String,
    /// TURN servers for calls, comma-separated (`turn:host:3478?transport=udp`).
    pub turn_urls: String,
    /// The secret shared with the TURN server (coturn's `static-auth-secret`).
    pub turn_secret: String,
    /// How long minted TURN credentials stay valid.
    pub turn_ttl_secs: u64,
    /// Largest file a user may upload, in bytes.
    pub max_upload_bytes: u64,
    /// Bytes of uploads one user may keep.
    pub media_quota_bytes: u64,
    /// Uploads one user may make per hour (and at once).
    pub media_uploads_per_hour: u32,
    /// Uploads never sent in a message are deleted after this many seconds.
    pub media_unsent_ttl_secs: u64,
    /// `local` (files under `DATA_DIR/media`) or `s3`.
    pub media_store: MediaStoreKind,
    /// The S3 endpoint (`http://127.0.0.1:9000` for a local server); empty: AWS.
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    /// Makes this process one node of a cluster (`redis://host:6379/0`): the nodes share
    /// `DATABASE_URL` (PostgreSQL or MariaDB) and hear of each other's events through
    /// Redis. Empty: a single process.
    pub redis_url: String,
    /// Put before every Redis key and channel (several installations on one Redis).
    pub redis_prefix: String,
    /// A node silent this long counts as dead: its users go offline.
    pub cluster_node_ttl_secs: u64,
    /// Where `GET /metrics` (Prometheus text) is served, e.g. `127.0.0.1:9100`; never on
    /// the public port. Unset: no metrics.
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind_addr: None,
            database_url: None,
            data_dir: PathBuf::from("data"),
            cookie_secure: false,
            session_ttl_secs: 30 * 24 * 3600,
            log_level: "info".into(),
            login_max_failures: 5,
            login_max_failures_per_ip: 20,
            login_max_failures_per_account: 50,
            login_window_secs: 15 * 60,
            register_max_per_ip: 10,
            register_window_secs: 3600,
            contact_requests_per_hour: 30,
            trust_proxy_headers: false,
            trusted_proxies: String::new(),
            max_body_bytes: 64 * 1024,
            db_max_connections: 16,
            group_max_members: 500,
            allowed_origins: String::new(),
            ws_send_rate: 20,
            ws_send_burst: 60,
            ws_frame_rate: 50,
            ws_frame_burst: 200,
            ws_max_connections_per_user: 10,
            ws_session_check_secs: 30,
            ws_idle_timeout_secs: 60,
            ws_ping_secs: 20,
            ws_queue: 256,
            sqlite_synchronous: SqliteSynchronous::Normal,
            call_ring_secs: app::protocol::CALL_RING_SECS,
            call_resume_secs: app::protocol::CALL_RESUME_SECS,
            stun_urls: String::new(),
            turn_urls: String::new(),
            turn_secret: String::new(),
            turn_ttl_secs: 24 * 3600,
            max_upload_bytes: 100 * 1024 * 1024,
            media_quota_bytes: 1024 * 1024 * 1024,
            media_uploads_per_hour: 300,
            media_unsent_ttl_secs: 24 * 3600,
            media_store: MediaStoreKind::Local,
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            redis_url: String::new(),
            redis_prefix: "qc".into(),
            cluster_node_ttl_secs: 30,
            metrics_addr: None,
        }
    }
}

impl Config {
    /// Reads the configuration: `QC_CONFIG` names a TOML file (default `quick-chat.toml`
    /// if present), then the environment overrides. A value that cannot be used is an
    /// error here, not a surprise later.
    pub fn load() -> Result<Self, Box<figment::Error>> {
        let file = std::env::var("QC_CONFIG").unwrap_or_else(|_| "quick-chat.toml".into());
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::raw().only(ENV_KEYS))
            .extract()
            .map_err(Box::new)?;
        config
            .proxies()
            .map_err(|e| Box::new(figment::Error::from(e)))?;
        if !config.redis_url.trim().is_empty() && config.database_url().starts_with("sqlite:") {
            return Err(Box::new(figment::Error::from(
                "REDIS_URL makes a cluster node: its nodes share a PostgreSQL or MariaDB \
                 DATABASE_URL, not a SQLite file"
                    .to_owned(),
            )));
        }
        if config.media_store == MediaStoreKind::S3 && config.s3_bucket.trim().is_empty() {
            return Err(Box::new(figment::Error::from(
                "MEDIA_STORE=s3 needs S3_BUCKET".to_owned(),
            )));
        }
        Ok(config)
    }

    /// `trusted_proxies` parsed: addresses become single-address networks.
    pub fn proxies(&self) -> Result<Vec<ipnet::IpNet>, String> {
        split_list(&self.trusted_proxies)
            .iter()
            .map(|item| {
                item.parse::<ipnet::IpNet>()
                    .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("TRUSTED_PROXIES: {item:?} is not an address or network"))
            })
            .collect()
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("quick-chat.db").display()
            )
        })
    }

    /// The relay's part of this configuration.
    pub fn relay_settings(&self) -> crate::relay::RelaySettings {
        crate::relay::RelaySettings {
            allowed_origins: self
                .allowed_origins
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            send_rate: self.ws_send_rate,
            send_burst: self.ws_send_burst,
            frame_rate: self.ws_frame_rate,
            frame_burst: self.ws_frame_burst,
            max_connections_per_user: self.ws_max_connections_per_user.max(1),
            session_check: Duration::from_secs(self.ws_session_check_secs.max(1)),
            idle_timeout: Duration::from_secs(self.ws_idle_timeout_secs.max(1)),
            ping_every: Duration::from_secs(self.ws_ping_secs.max(1)),
            queue: self.ws_queue.max(1),
            ring_timeout: Duration::from_secs(self.call_ring_secs.max(1)),
            resume_timeout: Duration::from_secs(self.call_resume_secs.max(1)),
        }
    }

    /// The cluster's part of this configuration; `None` for a single process.
    pub fn cluster_settings(&self) -> Option<crate::cluster::ClusterSettings> {
        let url = self.redis_url.trim();
        (!url.is_empty()).then(|| crate::cluster::ClusterSettings {
            url: url.to_owned(),
            prefix: self.redis_prefix.trim().to_owned(),
            node_ttl: Duration::from_secs(self.cluster_node_ttl_secs.max(1)),
        })
    }

    /// The media store's part of this configuration.
    pub fn media_settings(&self) -> crate::media::MediaSettings {
        crate::media::MediaSettings {
            max_upload_bytes: self.max_upload_bytes.max(1),
            quota_bytes: self.media_quota_bytes,
            uploads_per_hour: self.media_uploads_per_hour.max(1),
            unsent_ttl: Duration::from_secs(self.media_unsent_ttl_secs.max(60)),
            data_dir: self.data_dir.clone(),
            store: match self.media_store {
                MediaStoreKind::Local => {
                    crate::media::StoreConfig::Directory(self.data_dir.join("media"))
                }
                MediaStoreKind::S3 => crate::media::StoreConfig::S3 {
                    endpoint: self.s3_endpoint.trim().to_owned(),
                    bucket: self.s3_bucket.trim().to_owned(),
                    region: self.s3_region.trim().to_owned(),
                    access_key_id: self.s3_access_key_id.clone(),
                    secret_access_key: self.s3_secret_access_key.clone(),
                },
            },
            allowed_origins: self.relay_settings().allowed_origins,
        }
    }

    /// What the request handlers need of this configuration.
    pub fn settings(&self) -> app::ssr::Settings {
        app::ssr::Settings {
            cookie_secure: self.cookie_secure,
            session_ttl: Duration::from_secs(self.session_ttl_secs),
            throttle: app::ssr::throttle::Limits {
                per_user_and_address: self.login_max_failures,
                per_address: self.login_max_failures_per_ip,
                per_account: self.login_max_failures_per_account,
                window: Duration::from_secs(self.login_window_secs),
                registrations_per_address: self.register_max_per_ip,
                registration_window: Duration::from_secs(self.register_window_secs),
            },
            trust_proxy_headers: self.trust_proxy_headers,
            // `load` refused a list that does not parse.
            trusted_proxies: self.proxies().unwrap_or_default(),
            group_max_members: self.group_max_members,
            contact_requests_per_hour: self.contact_requests_per_hour,
            ice: app::ssr::IceSettings {
                stun_urls: split_list(&self.stun_urls),
                turn_urls: split_list(&self.turn_urls),
                turn_secret: self.turn_secret.clone(),
                turn_ttl: Duration::from_secs(self.turn_ttl_secs.max(60)),
            },
        }
    }
}

/// The non-empty items of a comma-separated list.
fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure type, not ours
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("COOKIE_SECURE", "true");
            jail.set_env("SESSION_TTL_SECS", "60");
            jail.set_env("DATA_DIR", "/tmp/qc");
            let config = Config::load().map_err(|e| e.to_string())?;
            assert!(config.cookie_secure);
            assert_eq!(config.session_ttl_secs, 60);
            assert_eq!(
                config.database_url(),
                "sqlite:///tmp/qc/quick-chat.db?mode=rwc"
            );
            Ok(())
        });
    }

    #[test]
    fn trusted_proxies_must_parse() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1 ,::1");
            let config = Config::load().map_err(|e| e.to_string())?;
            assert_eq!(config.settings().trusted_proxies.len(), 3);
            jail.set_env("TRUSTED_PROXIES", "10.0.0.0/8,proxy.local");
            let err = Config::load().expect_err("a name is not an address");
            assert!(err.to_string().contains("proxy.local"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_cluster_needs_a_shared_database() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("REDIS_URL", "redis://127.0.0.1:6379");
            let err = Config::load().expect_err("SQLite is one process's");
            assert!(err.to_string().contains("REDIS_URL"), "{err}");
            jail.set_env("DATABASE_URL", "postgres://db/qc");
            let config = Config::load().map_err(|e| e.to_string())?;
            let cluster = config.cluster_settings().expect("a cluster");
            assert_eq!(cluster.prefix, "qc");
            assert_eq!(cluster.node_ttl, Duration::from_secs(30));
            Ok(())
        });
    }

    #[test]
    fn a_toml_file_sets_values_the_environment_can_override() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "quick-chat.toml",
                "log_level = \"debug\"\nlogin_max_failures = 3\n",
            )?;
            jail.set_env("LOGIN_MAX_FAILURES", "9");
            let config = Config::load().map_err(|e| e.to_string())?;
            assert_eq!(config.log_level, "debug");
            assert_eq!(config.login_max_failures, 9);
            Ok(())
        });
    }
}
