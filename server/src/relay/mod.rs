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
mod node;
mod store;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use app::error::{ApiError, ErrorCode};
use app::protocol::ServerEvent;
use app::ssr::AppCore;
use app::ssr::auth::CurrentUser;
use app::ssr::messages::{self, Target};
use app::ssr::rate::Buckets;
use axum::extract::Extension;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::cluster::Cluster;
use hub::{Frame, Hub};

/// The relay's limits and timings (from the server configuration).
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Origins besides the server's own that may open a socket.
    pub allowed_origins: Vec<String>,
    /// Sustained messages per second per user, and the burst above it.
    pub send_rate: u32,
    pub send_burst: u32,
    /// Sustained other frames (sync, history, read, typing, calls) per second per user, and
    /// the burst above it.
    pub frame_rate: u32,
    pub frame_burst: u32,
    /// Most connections one user may have open at once.
    pub max_connections_per_user: usize,
    /// How often open connections' sessions are checked against the database.
    pub session_check: Duration,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// How often the server pings.
    pub ping_every: Duration,
    /// Frames waiting for one connection before it counts as too slow.
    pub queue: usize,
    /// How long a call rings before it counts as missed.
    pub ring_timeout: Duration,
    /// How long an answered call waits for a side whose connection dropped.
    pub resume_timeout: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            send_rate: 20,
            send_burst: 60,
            frame_rate: 50,
            frame_burst: 200,
            max_connections_per_user: 10,
            session_check: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            ping_every: Duration::from_secs(20),
            queue: 256,
            ring_timeout: Duration::from_secs(app::protocol::CALL_RING_SECS),
            resume_timeout: Duration::from_secs(app::protocol::CALL_RESUME_SECS),
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

/// The bus of a cluster node: to this node's connections at once, and through Redis to the
/// other nodes' (see [`crate::cluster`]).
pub struct ClusterBus {
    pub hub: Arc<Hub>,
    pub cluster: Arc<Cluster>,
}

impl Bus for ClusterBus {
    fn publish(&self, users: &[Uuid], frame: &Frame, skip: Option<u64>) {
        self.hub.deliver(users, frame, skip);
        self.cluster.deliver(users, frame.as_str(), skip);
    }
}

/// Serializes a server event once.
pub fn frame(event: &ServerEvent) -> Frame {
    Frame::from(serde_json::to_string(event).unwrap_or_default())
}

/// Typing notices forwarded per user and conversation: one every 2 s.
const TYPING_EVERY_SECS: f64 = 2.0;

pub struct Relay {
    pub core: Arc<AppCore>,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn Bus>,
    store: store::MessageStore,
    last_seen: last_seen::LastSeen,
    /// Messages (and call invitations) per user.
    sends: Buckets<Uuid>,
    /// Every other frame per user, over all their connections.
    frames: Buckets<Uuid>,
    /// Typing notices per user and conversation.
    typing: Buckets<(Uuid, Target)>,
    pub settings: RelaySettings,
    /// The calls ringing or answered on this server process.
    pub calls: calls::Calls,
    /// The other nodes, when this process is one node of a cluster.
    pub cluster: Option<Arc<Cluster>>,
    /// Set when the process is shutting down: no new connections.
    closing: std::sync::atomic::AtomicBool,
    /// Calls that ended here lately (cluster): an operation another node forwards for one
    /// of them, before Redis forgot it, is answered `not_found` from here.
    ended_calls: std::sync::Mutex<std::collections::VecDeque<(String, std::time::Instant)>>,
}

/// How long a node remembers the calls that ended on it, and how many at most.
const ENDED_CALLS_KEPT: Duration = Duration::from_secs(60);
const ENDED_CALLS_MAX: usize = 10_000;

impl Relay {
    /// Starts the relay for one server process: its message writer, the listener that
    /// forwards relation changes to the people concerned, and the two that end the sockets
    /// of ended sessions (at once when told, and by a periodic check otherwise).
    pub fn start(
        core: Arc<AppCore>,
        settings: RelaySettings,
        cluster: Option<Arc<Cluster>>,
    ) -> Arc<Self> {
        let hub = Arc::new(Hub::default());
        let bus: Arc<dyn Bus> = match &cluster {
            Some(cluster) => Arc::new(ClusterBus {
                hub: hub.clone(),
                cluster: cluster.clone(),
            }),
            None => Arc::new(LocalBus(hub.clone())),
        };
        let store = store::MessageStore::start(core.db.clone(), bus.clone(), 16 * 1024);
        let last_seen = last_seen::LastSeen::start(core.db.clone());
        let relay = Arc::new(Self {
            last_seen,
            sends: Buckets::new(
                f64::from(settings.send_rate),
                f64::from(settings.send_burst),
            ),
            frames: Buckets::new(
                f64::from(settings.frame_rate),
                f64::from(settings.frame_burst),
            ),
            typing: Buckets::new(1.0 / TYPING_EVERY_SECS, 1.0),
            core,
            hub,
            bus,
            store,
            settings,
            calls: calls::Calls::default(),
            cluster,
            closing: std::sync::atomic::AtomicBool::new(false),
            ended_calls: std::sync::Mutex::default(),
        });
        tokio::spawn(forward_relation_events(Arc::downgrade(&relay)));
        tokio::spawn(close_ended_sessions(Arc::downgrade(&relay)));
        tokio::spawn(check_sessions(Arc::downgrade(&relay)));
        if let Some(cluster) = relay.cluster.clone() {
            // A tenth of the burst at a time: a busy sender costs Redis one round trip per
            // few messages, and a user on two nodes gets at most that much more.
            let lease = (relay.settings.send_burst / 10).max(1);
            relay
                .sends
                .share(crate::cluster::limits::buckets(&cluster), "send", lease);
            // The same for every other frame (sync, history, receipts, calls' signals).
            let lease = (relay.settings.frame_burst / 10).max(1);
            relay
                .frames
                .share(crate::cluster::limits::buckets(&cluster), "frame", lease);
            // Until the bus is known to work, changes made on other nodes go unheard.
            relay.core.permissions.pause();
            let (tx, rx) = tokio::sync::mpsc::channel(1024);
            tokio::spawn(cluster.receive(tx));
            tokio::spawn(node::apply_remote(Arc::downgrade(&relay), rx));
            tokio::spawn(node::keep_presence(Arc::downgrade(&relay)));
        }
        relay
    }

    /// Remembers that `call_id` ended here.
    fn call_ended(&self, call_id: &str) {
        let mut ended = self.ended_calls.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        while ended
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > ENDED_CALLS_KEPT)
            || ended.len() >= ENDED_CALLS_MAX
        {
            ended.pop_front();
        }
        ended.push_back((call_id.to_owned(), now));
    }

    /// Whether `call_id` ended here within the last minute.
    pub(crate) fn ended_here(&self, call_id: &str) -> bool {
        self.ended_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(id, _)| id == call_id)
    }

    /// Before a graceful shutdown: every call held here ends as failed (both sides hear
    /// it, the records are stored, a cluster frees its users); answers how many. The calls
    /// would not outlive the process, and a side resuming elsewhere would find nothing.
    pub async fn end_calls(self: &Arc<Self>) -> usize {
        let effects = self.calls.end_all();
        let mut ended = 0;
        for effect in &effects {
            if let calls::Effect::Record {
                call_id,
                caller,
                callee,
                ..
            } = effect
            {
                ended += 1;
                if let Some(cluster) = &self.cluster {
                    self.call_ended(call_id);
                    if let Err(err) = cluster.release_call(call_id, *caller, *callee).await {
                        tracing::warn!(%err, "could not free a call's users (they expire)");
                    }
                }
            }
        }
        self.carry_out(effects);
        ended
    }

    /// The first step of a graceful shutdown: refuses new connections and closes every
    /// open one with 1012, so that clients reconnect at once (to another node of a
    /// cluster). Messages already received are still stored: see [`Relay::finish`].
    pub fn start_closing(&self) -> usize {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.hub.close_all(
            app::protocol::close::RESTARTING,
            "the server is restarting: reconnect",
        )
    }

    /// The last step: waits (until `deadline`) for the closed connections to finish and
    /// for the message writer to store everything it was given. Answers how many messages
    /// were left unstored (0 unless the database hung).
    pub async fn finish(&self, deadline: tokio::time::Instant) -> usize {
        while self.hub.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.store.flush(deadline).await
    }

    /// Tells `me`'s friends that `me` came online or went offline.
    pub(crate) async fn announce_presence(&self, me: Uuid, online: bool, last_seen: Option<i64>) {
        let Ok(friends) = self.core.permissions.friends_of(&self.core.db, me).await else {
            return;
        };
        let frame = frame(&ServerEvent::Presence(app::protocol::Presence {
            user: me.to_string(),
            online,
            last_seen,
        }));
        self.bus.publish(&friends, &frame, None);
    }

    /// `me` has no connection left here: unless they still have one on another node,
    /// records when they were last seen and tells their friends.
    pub(crate) async fn went_offline(&self, me: Uuid) {
        if let Some(cluster) = &self.cluster
            && !everywhere(cluster.went_offline(me).await)
        {
            return;
        }
        let now = app::ssr::now_ms();
        self.last_seen.record(me, now).await;
        self.announce_presence(me, false, Some(now)).await;
    }

    /// `me` opened their first connection here: unless they already had one on another
    /// node, tells their friends they are online.
    pub(crate) async fn came_online(&self, me: Uuid) {
        if let Some(cluster) = &self.cluster
            && !everywhere(cluster.came_online(me).await)
        {
            return;
        }
        self.announce_presence(me, true, None).await;
    }

    /// On a cluster, counts a new connection of `me` against `WS_MAX_CONNECTIONS_PER_USER`
    /// on every node together: false when the user already has that many open elsewhere.
    /// While Redis cannot answer, each node's own cap is all that holds.
    pub(crate) async fn claim_connection(&self, me: Uuid, conn: u64) -> bool {
        let Some(cluster) = &self.cluster else {
            return true;
        };
        cluster
            .claim_connection(me, conn, self.settings.max_connections_per_user)
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(%err, "connection cap: Redis cannot say about the other nodes");
                true
            })
    }

    /// Gives back the place [`Relay::claim_connection`] took for `conn`, if it took one.
    pub(crate) async fn release_connection(&self, me: Uuid, conn: u64) {
        if let Some(cluster) = &self.cluster
            && let Err(err) = cluster.release_connection(me, conn).await
        {
            tracing::warn!(%err, "connection cap: could not count a closed connection");
        }
    }

    /// Whether each of `users` has a connection open on any node.
    pub(crate) async fn online(&self, users: &[Uuid]) -> Vec<bool> {
        if let Some(cluster) = &self.cluster {
            match cluster.online(users).await {
                Ok(online) => return online,
                Err(err) => tracing::warn!(%err, "presence: only this node's is known"),
            }
        }
        users.iter().map(|u| self.hub.is_online(*u)).collect()
    }

    /// The members of a group (cached).
    async fn group_members(&self, group: Uuid) -> Result<Arc<Vec<Uuid>>, ApiError> {
        self.core
            .permissions
            .group_members(&self.core.db, group)
            .await
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
                if self
                    .core
                    .permissions
                    .are_friends(&self.core.db, me, peer)
                    .await?
                {
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
        // On a cluster, a call that ends frees its users in Redis before anybody hears it
        // ended, so that calling again at once does not find them busy.
        let ended = effects.iter().find_map(|e| match e {
            calls::Effect::Record {
                call_id,
                caller,
                callee,
                ..
            } => Some((call_id.clone(), *caller, *callee)),
            _ => None,
        });
        if let (Some(cluster), Some((call_id, caller, callee))) = (self.cluster.clone(), ended) {
            self.call_ended(&call_id);
            let relay = self.clone();
            tokio::spawn(async move {
                if let Err(err) = cluster.release_call(&call_id, caller, callee).await {
                    tracing::warn!(%err, "could not free a call's users (they expire)");
                }
                relay.carry_out(effects);
            });
            return;
        }
        self.carry_out(effects);
    }

    /// Runs `step` on the calls after `after`, and carries out what it decides (nothing
    /// once the relay is gone).
    fn later(
        self: &Arc<Self>,
        after: Duration,
        step: impl FnOnce(&calls::Calls) -> Vec<calls::Effect> + Send + 'static,
    ) {
        let relay = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some(relay) = relay.upgrade() {
                let effects = step(&relay.calls);
                relay.apply_call_effects(effects);
            }
        });
    }

    fn carry_out(self: &Arc<Self>, effects: Vec<calls::Effect>) {
        for effect in effects {
            match effect {
                calls::Effect::ToSession(session, event) => {
                    let frame = frame(&event);
                    if !self.hub.send_to(session.user, session.conn, frame.clone())
                        && let Some(cluster) = &self.cluster
                    {
                        cluster.to_conn(session.user, session.conn, frame.as_str());
                    }
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
                    self.later(self.settings.ring_timeout, move |calls| {
                        calls.ring_timeout(&call_id)
                    });
                }
                calls::Effect::StartResumeTimer(call_id, who) => {
                    self.later(self.settings.resume_timeout, move |calls| {
                        calls.resume_timeout(&call_id, who)
                    });
                }
            }
        }
    }
}

/// Whether a presence change on this node is one for the whole cluster, as Redis answers;
/// yes when Redis cannot say (friends hear the same news twice at worst).
fn everywhere(answer: Result<bool, fred::prelude::Error>) -> bool {
    answer.unwrap_or_else(|err| {
        tracing::warn!(%err, "presence: Redis cannot say about the other nodes");
        true
    })
}

/// Forwards committed relation changes to the users concerned, and drops the caches.
async fn forward_relation_events(relay: std::sync::Weak<Relay>) {
    let Some(mut rx) = relay.upgrade().map(|r| r.core.events.subscribe()) else {
        return;
    };
    loop {
        let events = match rx.recv().await {
            Ok(events) => events,
            // Missed some (the permission cache was kept true by `announce` itself);
            // clients reload their lists on the next change or navigation.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Vec::new(),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some(relay) = relay.upgrade() else { return };
        relation_frames(&relay.hub, &events);
        if let Some(cluster) = &relay.cluster
            && !events.is_empty()
        {
            cluster.send(crate::cluster::Remote::Relation { events });
        }
    }
}

/// Tells each user concerned by `events` what changed, on this node.
fn relation_frames(hub: &Hub, events: &[app::ssr::RelationEvent]) {
    for event in events {
        let frame = frame(&ServerEvent::Relation {
            change: event.change,
            username: event.username.clone(),
            community_id: event.community_id.map(|c| c.to_string()),
        });
        hub.deliver(&[event.user], &frame, None);
    }
}

/// Closes the sockets of sessions ended on this server process, as soon as the ending is
/// committed.
async fn close_ended_sessions(relay: std::sync::Weak<Relay>) {
    let Some(mut rx) = relay.upgrade().map(|r| r.core.sessions_ended.subscribe()) else {
        return;
    };
    loop {
        let ended = match rx.recv().await {
            Ok(ended) => ended,
            // Missed some: check every open session now.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                let Some(relay) = relay.upgrade() else { return };
                check_sessions_once(&relay).await;
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some(relay) = relay.upgrade() else { return };
        close_sessions(&relay.hub, &ended);
        if let Some(cluster) = &relay.cluster {
            cluster.send(crate::cluster::Remote::SessionsEnded { ended });
        }
    }
}

/// Closes the connections of `ended` on this node.
fn close_sessions(hub: &Hub, ended: &app::ssr::SessionsEnded) {
    let closed = hub.close_sessions(ended.user, &ended.which);
    if closed > 0 {
        tracing::info!(user = %ended.user, closed, "closed the connections of ended sessions");
    }
}

/// Every `session_check`, asks the database which open connections' sessions still
/// authenticate and closes the others: sessions that expired, accounts suspended by hand,
/// endings this process was not told about. Also records that the live ones are in use.
async fn check_sessions(relay: std::sync::Weak<Relay>) {
    let Some(every) = relay.upgrade().map(|r| r.settings.session_check) else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(relay) = relay.upgrade() else { return };
        check_sessions_once(&relay).await;
    }
}

async fn check_sessions_once(relay: &Relay) {
    let open: Vec<String> = relay
        .hub
        .sessions()
        .into_iter()
        .map(|(_, s)| s.to_string())
        .collect();
    if open.is_empty() {
        return;
    }
    let live = match app::ssr::accounts::live_sessions(&relay.core.db, &open).await {
        Ok(live) => live,
        Err(err) => {
            tracing::warn!(error = %err.message, "could not check the open sessions");
            return;
        }
    };
    let ended: HashSet<Arc<str>> = open
        .iter()
        .filter(|s| !live.contains(*s))
        .map(|s| Arc::from(s.as_str()))
        .collect();
    if !ended.is_empty() {
        let closed = relay.hub.close_ended(&ended);
        tracing::info!(
            closed,
            "closed the connections of sessions that no longer authenticate"
        );
    }
    let live: Vec<String> = live.into_iter().collect();
    app::ssr::accounts::touch_sessions(&relay.core.db, &live).await;
}

/// `GET /ws`: authenticates by the session cookie, checks the `Origin`, and upgrades.
pub async fn ws_handler(
    Extension(relay): Extension<Arc<Relay>>,
    user: CurrentUser,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !crate::edge::origin_allowed(&headers, &relay.settings.allowed_origins) {
        return ApiError::forbidden("This origin may not open a connection.").into_response();
    }
    if relay.closing.load(std::sync::atomic::Ordering::SeqCst) {
        return ApiError::new(ErrorCode::Unavailable, "The server is restarting.").into_response();
    }
    let limit = app::protocol::MAX_FRAME_BYTES * 2;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(limit * 2)
        .on_upgrade(move |socket| conn::run(relay, user, socket))
}
