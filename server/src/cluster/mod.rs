//! One node of a cluster (`REDIS_URL` set): how the nodes hear of each other's events, and
//! who is online anywhere.
//!
//! The database stays the truth; Redis only carries notifications. After a commit a node
//! delivers to its own connections at once and publishes a small event on one channel that
//! every node subscribes to, through one subscriber connection per node. An event that may
//! have been missed (Redis down, a publish that failed, a subscriber that fell behind)
//! turns into a `resync` for the connections concerned: their clients ask for everything
//! after their cursor again, from the database. While the bus is down, the node goes on
//! storing and delivering locally, and caches no permissions (a change made on another
//! node would not be heard of).
//!
//! Presence lives in Redis with expiry times (see [`presence`]): each node renews its
//! users every `node_ttl / 3`, so a node that dies takes its users offline within
//! `node_ttl`, and a surviving node tells their friends.
pub mod calls;
pub mod connections;
pub mod limits;
pub mod presence;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use app::ssr::{RelationEvent, SessionsEnded};
use fred::clients::SubscriberClient;
use fred::prelude::{
    Builder, Client, ClientLike, Config as RedisConfig, EventInterface, PubsubInterface,
    ReconnectPolicy, TcpConfig,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use uuid::Uuid;

/// A cluster's settings.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// `redis://host:port/db` (or `rediss://` for TLS).
    pub url: String,
    /// Put before every key and channel name, so that several installations (or tests)
    /// can share one Redis.
    pub prefix: String,
    /// How long a node's users stay online after its last sign of life.
    pub node_ttl: Duration,
}

/// Events that most go to the other nodes, at most this many per Redis message.
const EVENTS_PER_PUBLISH: usize = 256;
/// Events waiting to be published; beyond this, events are dropped and the other nodes
/// told to resync.
const OUTBOX: usize = 65_536;
/// How long one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// What one node tells the others. (Tagged outside: a frame is carried as it is, without
/// escaping, and an internally tagged enum cannot hold raw JSON.)
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remote {
    /// A frame for every connection of these users but `skip` (connection ids are unique
    /// across nodes).
    Deliver {
        users: Vec<Uuid>,
        frame: Box<RawValue>,
        #[serde(default)]
        skip: Option<u64>,
    },
    /// A frame for one connection, wherever it is.
    ToConn {
        user: Uuid,
        conn: u64,
        frame: Box<RawValue>,
    },
    /// A session does something to a call held on another node.
    Call {
        call_id: String,
        user: Uuid,
        conn: u64,
        op: crate::relay::calls::CallOp,
    },
    /// A connection opened (`open`) or closed (`signed_out`: because its session ended):
    /// calls held elsewhere for its user ring on it, or wait for it to resume or end.
    CallSession {
        user: Uuid,
        conn: u64,
        open: bool,
        #[serde(default)]
        signed_out: bool,
    },
    /// Committed relation changes: forget the cached permissions they touch, and tell
    /// each user concerned.
    Relation { events: Vec<RelationEvent> },
    /// Sessions that ended: close their connections.
    SessionsEnded { ended: SessionsEnded },
    /// The sender dropped events: every node tells its connections to resync.
    Resync,
}

/// How every message `node` publishes begins.
fn own_prefix(node: Uuid) -> String {
    format!("{{\"node\":\"{node}\"")
}

/// One Redis message: the node that sent it and its events, in order.
#[derive(Serialize, Deserialize)]
struct Envelope {
    node: Uuid,
    /// When it was published (Unix ms, the sender's clock), for the lag figure.
    #[serde(default)]
    at: i64,
    events: Vec<Remote>,
}

/// What arrives from the bus, for the relay to carry out.
#[derive(Debug)]
pub enum Incoming {
    Event(Remote),
    /// Events may have been missed (the subscriber fell behind or reconnected); the bus
    /// works (again).
    Missed,
    /// The bus is down: changes made on other nodes go unheard until `Missed`.
    Down,
}

pub struct Cluster {
    /// This process's id among the nodes (new at every start).
    pub node: Uuid,
    pub settings: ClusterSettings,
    channel: String,
    client: Client,
    subscriber: SubscriberClient,
    outbox: mpsc::Sender<Remote>,
    /// Set when events meant for the other nodes were dropped; the next publish that
    /// gets through tells them to resync first.
    lost: Arc<AtomicBool>,
}

impl Cluster {
    /// Builds the two Redis connections (commands, and the subscriber) and starts
    /// connecting; a Redis that is not up yet is retried for as long as it takes, with
    /// the node degraded meanwhile. Fails only on a URL that does not parse.
    pub fn start(settings: ClusterSettings) -> Result<Arc<Self>, String> {
        let config = RedisConfig::from_url(&settings.url)
            .map_err(|e| format!("REDIS_URL: {}", e.details()))?;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = COMMAND_TIMEOUT;
                c.internal_command_timeout = COMMAND_TIMEOUT;
                c.tcp = TcpConfig {
                    nodelay: Some(true),
                    ..TcpConfig::default()
                };
            })
            .with_performance_config(|p| {
                p.default_command_timeout = COMMAND_TIMEOUT;
                p.broadcast_channel_capacity = 16 * 1024;
            })
            // Forever: from 100 ms, doubling up to 2 s between attempts.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2000, 2));
        let client = builder.build().map_err(|e| e.to_string())?;
        let subscriber = builder
            .build_subscriber_client()
            .map_err(|e| e.to_string())?;
        client.connect();
        subscriber.connect();
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let lost = Arc::new(AtomicBool::new(false));
        let node = Uuid::new_v4();
        let channel = format!("{}:bus", settings.prefix);
        tokio::spawn(publish_loop(
            client.clone(),
            channel.clone(),
            node,
            rx,
            lost.clone(),
        ));
        Ok(Arc::new(Self {
            node,
            settings,
            channel,
            client,
            subscriber,
            outbox,
            lost,
        }))
    }

    /// Hands `event` to the other nodes (in the order of calls; never waits).
    pub fn send(&self, event: Remote) {
        if self.outbox.try_send(event).is_err() {
            self.lost.store(true, Ordering::Release);
        }
    }

    /// A frame for every connection of `users` on the other nodes, but `skip`.
    pub fn deliver(&self, users: &[Uuid], frame: &str, skip: Option<u64>) {
        if let Some(frame) = raw(frame) {
            self.send(Remote::Deliver {
                users: users.to_vec(),
                frame,
                skip,
            });
        }
    }

    /// A frame for connection `conn` of `user`, on whichever other node has it.
    pub fn to_conn(&self, user: Uuid, conn: u64, frame: &str) {
        if let Some(frame) = raw(frame) {
            self.send(Remote::ToConn { user, conn, frame });
        }
    }

    /// Whether both connections to Redis are up and nothing is waiting to be resent.
    pub fn healthy(&self) -> bool {
        self.client.is_connected()
            && self.subscriber.is_connected()
            && !self.lost.load(Ordering::Acquire)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Runs until `incoming` closes: subscribes (again after every reconnect) and hands
    /// each other node's event to `incoming`, with [`Incoming::Missed`] whenever events
    /// may have been lost, and [`Incoming::Down`] when the bus stops working.
    pub async fn receive(self: Arc<Self>, incoming: mpsc::Sender<Incoming>) {
        let mut messages = self.subscriber.message_rx();
        let mut reconnects = self.subscriber.reconnect_rx();
        let mut check = tokio::time::interval(Duration::from_millis(250));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut subscribed = false;
        // Redis hands this node its own messages too: they are known by their first bytes
        // (serde writes `node` first) and dropped unread.
        let own = own_prefix(self.node);
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Ok(message) => {
                        let Some(bytes) = message.value.as_bytes() else { continue };
                        if bytes.starts_with(own.as_bytes()) {
                            continue;
                        }
                        let envelope: Envelope = match serde_json::from_slice(bytes) {
                            Ok(envelope) => envelope,
                            Err(err) => {
                                tracing::warn!(%err, "an unreadable bus message was dropped");
                                continue;
                            }
                        };
                        if envelope.node == self.node {
                            continue;
                        }
                        let lag = (app::ssr::now_ms() - envelope.at).max(0) as f64 / 1000.0;
                        metrics::histogram!("qc_bus_lag_seconds").record(lag);
                        metrics::counter!("qc_bus_received_total")
                            .increment(envelope.events.len() as u64);
                        for event in envelope.events {
                            if incoming.send(Incoming::Event(event)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "the bus subscriber fell behind");
                        if incoming.send(Incoming::Missed).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = reconnects.recv() => {
                    // Whatever was published while the subscriber was away is gone.
                    subscribed = false;
                }
                _ = check.tick() => {}
            }
            if subscribed && !self.subscriber.is_connected() {
                subscribed = false;
                tracing::warn!("the bus is down: delivering to this node's connections only");
                if incoming.send(Incoming::Down).await.is_err() {
                    return;
                }
            }
            if !subscribed && self.subscriber.is_connected() {
                match self.subscriber.subscribe(self.channel.as_str()).await {
                    Ok(()) => {
                        subscribed = true;
                        tracing::info!(node = %self.node, "listening on the bus");
                        if incoming.send(Incoming::Missed).await.is_err() {
                            return;
                        }
                    }
                    Err(err) => tracing::warn!(%err, "could not subscribe to the bus"),
                }
            }
        }
    }
}

/// A frame as raw JSON, for carrying without escaping.
fn raw(frame: &str) -> Option<Box<RawValue>> {
    RawValue::from_string(frame.to_owned())
        .inspect_err(|err| tracing::error!(%err, "a frame that is not JSON was not published"))
        .ok()
}

/// Publishes the outbox in order, many events per Redis message. A message that cannot
/// be published is dropped (the database has what it announced) and the next one that
/// gets through starts with a `resync` for every node.
async fn publish_loop(
    client: Client,
    channel: String,
    node: Uuid,
    mut rx: mpsc::Receiver<Remote>,
    lost: Arc<AtomicBool>,
) {
    let mut events = Vec::with_capacity(EVENTS_PER_PUBLISH);
    let mut failing = false;
    // While a resync is owed and nothing else is to be sent, it goes alone once a second.
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            got = rx.recv_many(&mut events, EVENTS_PER_PUBLISH) => if got == 0 { return },
            _ = retry.tick(), if lost.load(Ordering::Acquire) => {}
        }
        let resync = lost.load(Ordering::Acquire);
        if resync {
            events.insert(0, Remote::Resync);
        }
        if events.is_empty() {
            continue;
        }
        let count = events.len() as u64;
        let envelope = Envelope {
            node,
            at: app::ssr::now_ms(),
            events: std::mem::take(&mut events),
        };
        let payload = match serde_json::to_string(&envelope) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!(%err, "could not encode bus events");
                lost.store(true, Ordering::Release);
                continue;
            }
        };
        match client.publish::<(), _, _>(channel.as_str(), payload).await {
            Ok(()) => {
                metrics::counter!("qc_bus_published_total").increment(count);
                if resync {
                    lost.store(false, Ordering::Release);
                }
                if failing {
                    tracing::info!("publishing on the bus again");
                    failing = false;
                }
            }
            Err(err) => {
                metrics::counter!("qc_bus_publish_failures_total").increment(1);
                lost.store(true, Ordering::Release);
                if !failing {
                    tracing::warn!(%err, "could not publish on the bus; the other nodes will resync");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_knows_its_own_messages_by_their_first_bytes() {
        let node = Uuid::new_v4();
        let mine = Envelope {
            node,
            at: 1,
            events: vec![Remote::Resync],
        };
        let text = serde_json::to_string(&mine).expect("encodes");
        assert!(text.starts_with(&own_prefix(node)), "{text}");
        assert!(!text.starts_with(&own_prefix(Uuid::new_v4())));
    }
}
