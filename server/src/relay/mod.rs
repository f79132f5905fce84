//! The real-time relay: `GET /ws`. One authenticated WebSocket per browser tab; messages are
//! stored, then acknowledged, then delivered (see `store`); everything else a client needs
//! is answered on the same socket (see `conn`).
//!
//! Delivery goes through [`Bus`], so a second server process can be added with a pub/sub
//! bus; the database stays the truth and clients fill any gap with `sync`.
pub mod calls;
mod conn;
pub mod hub;
mod last_seen;
mod limits;
mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use app::error::{ApiError, ErrorCode};
use app::protocol::ServerEvent;
use app::ssr::auth::CurrentUser;
use app::ssr::messages::{self, Target};
use app::ssr::{AppCore, relations};
use axum::extract::Extension;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use hub::{Frame, Hub};

/// The relay's limits and timings (from the server configuration).
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Origins besides the server's own that may open a socket.
    pub allowed_origins: Vec<String>,
    /// Sustained messages per second per user, and the burst above it.
    pub send_rate: u32,
    pub send_burst: u32,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// How often the server pings.
    pub ping_every: Duration,
    /// Frames waiting for one connection before it counts as too slow.
    pub queue: usize,
    /// How long a call rings before it counts as missed.
    pub ring_timeout: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            send_rate: 20,
            send_burst: 60,
            idle_timeout: Duration::from_secs(60),
            ping_every: Duration::from_secs(20),
            queue: 256,
            ring_timeout: Duration::from_secs(app::protocol::CALL_RING_SECS),
        }
    }
}

/// Hands frames to users' connections on every server process.
pub trait Bus: Send + Sync + 'static {
    /// Delivers `frame` to every connection of `users`, except connection `skip` of this
    /// process.
    fn publish(&self, users: &[Uuid], frame: &Frame, skip: Option<u64>);
}

/// The bus of a single server process: straight to the local hub.
pub struct LocalBus(pub Arc<Hub>);

impl Bus for LocalBus {
    fn publish(&self, users: &[Uuid], frame: &Frame, skip: Option<u64>) {
        self.0.deliver(users, frame, skip);
    }
}

/// Serializes a server event once.
pub fn frame(event: &ServerEvent) -> Frame {
    Frame::from(serde_json::to_string(event).unwrap_or_default())
}

pub struct Relay {
    pub core: Arc<AppCore>,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn Bus>,
    store: store::MessageStore,
    last_seen: last_seen::LastSeen,
    rate: limits::SendRate,
    pub settings: RelaySettings,
    /// Who may message whom, as last looked up; forgotten on every relation change.
    friends: RwLock<HashMap<(Uuid, Uuid), bool>>,
    /// Group members, as last looked up; forgotten on every relation change.
    members: RwLock<HashMap<Uuid, Arc<Vec<Uuid>>>>,
    /// The `relations_version` the caches were filled at.
    cached_at: AtomicU64,
    /// The calls ringing or answered on this server process.
    pub calls: calls::Calls,
}

impl Relay {
    /// Starts the relay for one server process: its message writer, and the listener that
    /// forwards relation changes to the people concerned.
    pub fn start(core: Arc<AppCore>, settings: RelaySettings) -> Arc<Self> {
        let hub = Arc::new(Hub::default());
        let bus: Arc<dyn Bus> = Arc::new(LocalBus(hub.clone()));
        let store = store::MessageStore::start(core.db.clone(), bus.clone(), 16 * 1024);
        let last_seen = last_seen::LastSeen::start(core.db.clone());
        let relay = Arc::new(Self {
            last_seen,
            rate: limits::SendRate::new(settings.send_rate, settings.send_burst),
            core,
            hub,
            bus,
            store,
            settings,
            friends: RwLock::default(),
            members: RwLock::default(),
            cached_at: AtomicU64::new(0),
            calls: calls::Calls::default(),
        });
        tokio::spawn(forward_relation_events(Arc::downgrade(&relay)));
        relay
    }

    fn forget_relations(&self) {
        self.friends
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Drops the caches if a relation changed since they were filled.
    fn check_cache(&self) {
        let now = self.core.relations_version.load(Ordering::SeqCst);
        if self.cached_at.swap(now, Ordering::SeqCst) != now {
            self.forget_relations();
        }
    }

    /// The members of a group (cached).
    async fn group_members(&self, group: Uuid) -> Result<Arc<Vec<Uuid>>, ApiError> {
        self.check_cache();
        if let Some(m) = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
        {
            return Ok(m.clone());
        }
        let members = Arc::new(messages::group_members(&self.core.db, group).await?);
        let mut cache = self.members.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 50_000 {
            cache.clear();
        }
        cache.insert(group, members.clone());
        Ok(members)
    }

    /// Whether two users are friends (cached).
    async fn are_friends(&self, a: Uuid, b: Uuid) -> Result<bool, ApiError> {
        self.check_cache();
        let key = if a < b { (a, b) } else { (b, a) };
        if let Some(ok) = self
            .friends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(*ok);
        }
        let ok = relations::are_friends(&self.core.db, a, b).await?;
        let mut cache = self.friends.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 200_000 {
            cache.clear();
        }
        cache.insert(key, ok);
        Ok(ok)
    }

    /// The current `relations_version`, to hand to [`Relay::remember_friends`].
    pub fn relations_version(&self) -> u64 {
        self.core.relations_version.load(Ordering::SeqCst)
    }

    /// Fills the friendship cache with the friends `ready` loads anyway, so that a user's
    /// first message to each friend waits for no lookup (with 10,000 users connecting, the
    /// first message of every pair queued on the database pool). `version` is
    /// [`Relay::relations_version`] from before the friends were loaded: if a relation
    /// changed since, the list may be stale and is left out.
    pub fn remember_friends(&self, me: Uuid, friends: &[Uuid], version: u64) {
        self.check_cache();
        if self.relations_version() != version {
            return;
        }
        let mut cache = self.friends.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() + friends.len() > 200_000 {
            cache.clear();
        }
        for &friend in friends {
            let key = if me < friend {
                (me, friend)
            } else {
                (friend, me)
            };
            cache.insert(key, true);
        }
    }

    /// Who receives what `me` sends to `target` (including `me`'s other sessions), or why
    /// `me` may not send there.
    pub async fn recipients(&self, me: Uuid, target: Target) -> Result<Vec<Uuid>, ApiError> {
        match target {
            Target::User(peer) if peer == me => Err(ApiError::invalid(
                "to",
                "Messages go to a friend or a group, not to yourself.",
            )),
            Target::User(peer) => {
                if self.are_friends(me, peer).await? {
                    Ok(vec![peer, me])
                } else {
                    Err(ApiError::new(
                        ErrorCode::NotFriends,
                        "You can only message your friends.",
                    ))
                }
            }
            Target::Group(group) => {
                let members = self.group_members(group).await?;
                if members.contains(&me) {
                    Ok(members.to_vec())
                } else {
                    Err(ApiError::new(
                        ErrorCode::NotMember,
                        "You are not a member of this group.",
                    ))
                }
            }
        }
    }
}

impl Relay {
    /// Carries out what a call operation decided: frames to sessions and users, the call
    /// record, the ring timer.
    pub fn apply_call_effects(self: &Arc<Self>, effects: Vec<calls::Effect>) {
        for effect in effects {
            match effect {
                calls::Effect::ToSession(session, event) => {
                    self.hub.send_to(session.user, session.conn, frame(&event));
                }
                calls::Effect::ToUser { user, skip, event } => {
                    self.bus.publish(&[user], &frame(&event), skip);
                }
                calls::Effect::Record {
                    call_id,
                    caller,
                    callee,
                    media,
                    outcome,
                    duration_ms,
                } => {
                    let job = store::Job {
                        message: messages::NewMessage {
                            sender: caller,
                            client_id: format!("call:{call_id}"),
                            target: Target::User(callee),
                            content: app::protocol::Content::Call {
                                media,
                                outcome,
                                duration_ms,
                            },
                            created_at: app::ssr::now_ms(),
                        },
                        sender: None,
                        recipients: vec![caller, callee],
                    };
                    let store = self.store.clone();
                    tokio::spawn(async move { store.submit(job).await });
                }
                calls::Effect::StartRingTimer(call_id) => {
                    let relay = Arc::downgrade(self);
                    let after = self.settings.ring_timeout;
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        if let Some(relay) = relay.upgrade() {
                            let effects = relay.calls.ring_timeout(&call_id);
                            relay.apply_call_effects(effects);
                        }
                    });
                }
            }
        }
    }
}

/// Forwards committed relation changes to the users concerned, and drops the caches.
async fn forward_relation_events(relay: std::sync::Weak<Relay>) {
    let Some(mut rx) = relay.upgrade().map(|r| r.core.events.subscribe()) else {
        return;
    };
    loop {
        let events = match rx.recv().await {
            Ok(events) => events,
            // Missed some: the caches are dropped below all the same; clients reload on the
            // next change or navigation.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Vec::new(),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some(relay) = relay.upgrade() else { return };
        relay.forget_relations();
        for event in events {
            let frame = frame(&ServerEvent::Relation {
                change: event.change,
                username: event.username,
                community_id: event.community_id.map(|c| c.to_string()),
            });
            relay.bus.publish(&[event.user], &frame, None);
        }
    }
}

/// `GET /ws`: authenticates by the session cookie, checks the `Origin`, and upgrades.
pub async fn ws_handler(
    Extension(relay): Extension<Arc<Relay>>,
    user: CurrentUser,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &relay.settings.allowed_origins) {
        return ApiError::forbidden("This origin may not open a connection.").into_response();
    }
    let limit = app::protocol::MAX_FRAME_BYTES * 2;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(limit * 2)
        .on_upgrade(move |socket| conn::run(relay, user, socket))
}

/// Browsers always send `Origin` with a WebSocket: it must be this server's own (its host
/// equals the `Host` header) or one of `allowed`. Clients that are not browsers send none.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_own_origin_or_listed_ones() {
        let own = headers(&[
            ("host", "chat.example.org"),
            ("origin", "https://chat.example.org"),
        ]);
        assert!(origin_allowed(&own, &[]));
        let evil = headers(&[
            ("host", "chat.example.org"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!origin_allowed(&evil, &[]));
        assert!(origin_allowed(&evil, &["https://evil.example".into()]));
        assert!(
            origin_allowed(&headers(&[("host", "x")]), &[]),
            "no Origin: not a browser"
        );
        let port = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3001"),
        ]);
        assert!(!origin_allowed(&port, &[]));
    }
}
