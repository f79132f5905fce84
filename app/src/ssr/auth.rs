//! Who is asking: the session cookie, the [`CurrentUser`] extractor, password hashing.
//!
//! The client never tells the server who it is; the session does. Server functions call
//! [`current_user`]; axum handlers (the WebSocket upgrade) take `CurrentUser` as an extractor.
use std::net::SocketAddr;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::ConnectInfo;
use base64::Engine;
use http::HeaderMap;
use http::request::Parts;
use sha2::{Digest, Sha256};

use super::AppCore;
use super::entity::user_base;
use crate::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "qc_session";

/// The signed-in user behind a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: user_base::Model,
    /// The id (token hash) of the session that authenticated this request.
    pub session_id: String,
    /// When that session expires (Unix milliseconds).
    pub session_expires_at: i64,
}

impl CurrentUser {
    pub fn id(&self) -> uuid::Uuid {
        self.user.id
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The `Set-Cookie` value that stores a session token.
pub fn session_cookie(token: &str, core: &AppCore) -> String {
    let secure = if core.settings.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        core.settings.session_ttl.as_secs()
    )
}

/// The `Set-Cookie` value that deletes the session cookie.
pub fn clear_session_cookie(core: &AppCore) -> String {
    let secure = if core.settings.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
}

/// Adds a `Set-Cookie` header to the server function's response.
pub fn set_cookie(value: &str) {
    if let (Some(res), Ok(value)) = (
        leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
        http::HeaderValue::from_str(value),
    ) {
        res.append_header(http::header::SET_COOKIE, value);
    }
}

/// A fresh random session token (256 bits, base64url) and the hash stored for it.
pub fn new_session_token() -> Result<(String, String), ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let id = token_hash(&token);
    Ok((token, id))
}

/// The session id for a token: hex SHA-256, so a leaked table does not leak live cookies.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

type HashJob = Box<dyn FnOnce() + Send>;

/// Hash jobs that may wait for a thread; beyond them a request is refused at once (503)
/// instead of queueing for ever longer: about a second of work on two cores.
const HASH_QUEUE: usize = 64;

/// A few threads of its own do every argon2 computation. Each takes 19 MiB and a core for
/// tens of milliseconds: on tokio's blocking pool a burst of logins spread over hundreds of
/// threads, and the allocator kept each thread's 19 MiB (gigabytes were seen under load).
/// A fixed set of threads bounds both the memory and the CPU that logins can take.
static HASHERS: std::sync::LazyLock<Option<std::sync::mpsc::SyncSender<HashJob>>> =
    std::sync::LazyLock::new(|| {
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(HASH_QUEUE);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if spawned.is_err() {
                return None;
            }
        }
        Some(tx)
    });

/// The answer when every hashing thread is busy and the queue is full.
pub fn hashers_busy() -> ApiError {
    ApiError {
        retry_after: Some(1),
        ..ApiError::new(
            crate::error::ErrorCode::Unavailable,
            "The server is busy. Please try again in a moment.",
        )
    }
}

/// Runs an argon2 computation on the hashing threads and waits for it; refuses at once
/// when the queue is full.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = reply.send(work());
    });
    let sender = HASHERS
        .as_ref()
        .ok_or_else(|| ApiError::internal("no hashing threads"))?;
    match sender.try_send(job) {
        Ok(()) => {}
        Err(std::sync::mpsc::TrySendError::Full(_)) => return Err(hashers_busy()),
        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
            return Err(ApiError::internal("the hashing threads have stopped"));
        }
    }
    answer.await.map_err(ApiError::internal)
}

/// Hashes a password with argon2id on the blocking pool (it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    hashing(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(ApiError::internal)?;
        let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await?
}

/// Checks a password against a stored hash, or against a dummy hash when there is no
/// account, so that both cases take the same time and reveal nothing.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    hashing(move || {
        let stored = match stored {
            Some(s) => s,
            None => dummy_hash()?.to_owned(),
        };
        let parsed = PasswordHash::new(&stored).map_err(ApiError::internal)?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

fn dummy_hash() -> Result<&'static str, ApiError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let salt = SaltString::encode_b64(b"quick-chat-dummy").map_err(ApiError::internal)?;
    let hash = Argon2::default()
        .hash_password(b"no such account", &salt)
        .map_err(ApiError::internal)?
        .to_string();
    Ok(DUMMY.get_or_init(|| hash))
}

/// The client's address: the socket peer, or, when the operator said proxies sit in front
/// (`trust_proxy_headers`), the right-most `X-Forwarded-For` entry that is not one of them.
/// Entries further left were written by the client itself and prove nothing. With no list
/// of proxies, exactly one is assumed: the last entry is the address it saw. A request that
/// did not come through a listed proxy keeps its peer address.
pub fn client_ip(parts: &Parts, trust_proxy_headers: bool, proxies: &[ipnet::IpNet]) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip());
    let from_proxy =
        peer.is_some_and(|p| proxies.is_empty() || proxies.iter().any(|n| n.contains(&p)));
    if trust_proxy_headers && from_proxy {
        let hops: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<std::net::IpAddr>() else {
                // Not an address: whatever wrote it cannot be trusted; stop here.
                break;
            };
            if !proxies.iter().any(|n| n.contains(&ip)) {
                return ip.to_string();
            }
        }
    }
    peer.map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The request's `User-Agent`, cut to what the session table keeps.
pub fn user_agent(parts: &Parts) -> String {
    parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(255)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; qc_session=tok; b=2".parse().unwrap(),
        );
        assert_eq!(
            cookie_value(&headers, SESSION_COOKIE).as_deref(),
            Some("tok")
        );
        assert_eq!(cookie_value(&headers, "missing"), None);
    }

    fn forwarded(peer: &str, xff: &[&str]) -> Parts {
        let mut req = http::Request::builder();
        for v in xff {
            req = req.header("x-forwarded-for", *v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        let addr: SocketAddr = format!("{peer}:1234").parse().unwrap();
        parts.extensions.insert(ConnectInfo(addr));
        parts
    }

    #[test]
    fn the_client_address_is_the_right_most_untrusted_hop() {
        let nets = |list: &[&str]| -> Vec<ipnet::IpNet> {
            list.iter().map(|n| n.parse().unwrap()).collect()
        };
        // Without trust, the header is ignored.
        let p = forwarded("10.0.0.9", &["6.6.6.6"]);
        assert_eq!(client_ip(&p, false, &[]), "10.0.0.9");
        // One proxy: the entry it appended, not the client's own claims further left.
        let p = forwarded("10.0.0.9", &["6.6.6.6, 1.2.3.4"]);
        assert_eq!(client_ip(&p, true, &[]), "1.2.3.4");
        let p = forwarded("10.0.0.9", &["6.6.6.6", "1.2.3.4"]);
        assert_eq!(client_ip(&p, true, &[]), "1.2.3.4", "several header lines");
        // A chain of listed proxies is skipped from the right.
        let proxies = nets(&["10.0.0.0/8", "192.168.1.1/32"]);
        let p = forwarded("10.0.0.9", &["6.6.6.6, 1.2.3.4, 192.168.1.1"]);
        assert_eq!(client_ip(&p, true, &proxies), "1.2.3.4");
        // A request that did not come through a listed proxy keeps its peer address.
        let p = forwarded("5.5.5.5", &["1.2.3.4"]);
        assert_eq!(client_ip(&p, true, &proxies), "5.5.5.5");
        // Garbage stops the walk.
        let p = forwarded("10.0.0.9", &["1.2.3.4, <script>"]);
        assert_eq!(client_ip(&p, true, &[]), "10.0.0.9");
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (t1, h1) = new_session_token().unwrap();
        let (t2, _) = new_session_token().unwrap();
        assert_ne!(t1, t2);
        assert_eq!(h1, token_hash(&t1));
        assert_eq!(h1.len(), 64);
    }
}
