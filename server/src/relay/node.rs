//! The relay's side of a cluster: what the other nodes' events do here, and this node's
//! presence in Redis.
use std::sync::Weak;

use app::protocol::ServerEvent;
use tokio::sync::mpsc;

use super::calls::{Effect, Session};
use super::{Relay, close_sessions, frame, relation_frames};
use crate::cluster::{Incoming, Remote};

/// Carries out the other nodes' events on this node's connections.
pub(super) async fn apply_remote(relay: Weak<Relay>, mut rx: mpsc::Receiver<Incoming>) {
    while let Some(incoming) = rx.recv().await {
        let Some(relay) = relay.upgrade() else { return };
        match incoming {
            Incoming::Event(Remote::Deliver { users, frame, skip }) => {
                relay
                    .hub
                    .deliver(&users, &super::Frame::from(frame.get()), skip);
            }
            Incoming::Event(Remote::ToConn { user, conn, frame }) => {
                relay
                    .hub
                    .send_to(user, conn, super::Frame::from(frame.get()));
            }
            Incoming::Event(Remote::Call {
                call_id,
                user,
                conn,
                op,
            }) => {
                // Only the node holding the call acts (or the one where it just ended); it
                // answers the session itself.
                if relay.calls.has(&call_id) || relay.ended_here(&call_id) {
                    let who = Session { user, conn };
                    match relay.calls.apply(who, &call_id, op) {
                        Ok(effects) => relay.apply_call_effects(effects),
                        Err(err) => relay.apply_call_effects(vec![Effect::ToSession(
                            who,
                            ServerEvent::Error {
                                code: err.code,
                                message: err.message,
                                client_id: Some(call_id),
                            },
                        )]),
                    }
                }
            }
            Incoming::Event(Remote::CallSession {
                user,
                conn,
                open,
                signed_out,
            }) => {
                let who = Session { user, conn };
                let effects = if open {
                    relay.calls.connected(who)
                } else {
                    relay.calls.disconnected(who, signed_out)
                };
                relay.apply_call_effects(effects);
            }
            Incoming::Event(Remote::Relation { events }) => {
                relay.core.permissions.forget(&events);
                relation_frames(&relay.hub, &events);
            }
            Incoming::Event(Remote::SessionsEnded { ended }) => close_sessions(&relay.hub, &ended),
            Incoming::Event(Remote::Resync) | Incoming::Missed => resync(&relay),
            Incoming::Down => relay.core.permissions.pause(),
        }
    }
}

/// Events for this node's connections may have been missed: the permission cache starts
/// over, and every connection is told to sync.
fn resync(relay: &Relay) {
    metrics::counter!("qc_bus_resyncs_total").increment(1);
    relay.core.permissions.resume();
    relay.hub.deliver_all(&frame(&ServerEvent::Resync));
}

/// Renews this node's users in Redis, and takes dead nodes' users offline, every
/// `node_ttl / 3`.
pub(super) async fn keep_presence(relay: Weak<Relay>) {
    let Some(every) = relay
        .upgrade()
        .and_then(|r| r.cluster.as_ref().map(|c| c.heartbeat_every()))
    else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tick.tick().await;
        let Some(relay) = relay.upgrade() else { return };
        let Some(cluster) = relay.cluster.clone() else {
            return;
        };
        let users = relay.hub.users();
        match cluster.heartbeat(&users).await {
            // Taken for dead while alive (Redis was away, or restarted empty): the
            // friends heard these users went offline.
            Ok(true) if !first => {
                tracing::warn!("this node had been taken for dead: announcing its users again");
                for user in users {
                    if relay.hub.is_online(user) {
                        relay.announce_presence(user, true, None).await;
                    }
                }
            }
            Ok(_) => first = false,
            Err(err) => tracing::warn!(%err, "presence heartbeat failed"),
        }
        // The calls held here keep their users busy everywhere.
        for (call_id, caller, callee) in relay.calls.held() {
            if let Err(err) = cluster.renew_call(&call_id, caller, callee).await {
                tracing::warn!(%err, "could not renew a call");
            }
        }
        match cluster.reap().await {
            Ok(offline) => {
                if !offline.is_empty() {
                    tracing::info!(users = offline.len(), "a node died: its users are offline");
                }
                let now = app::ssr::now_ms();
                for user in offline {
                    relay.last_seen.record(user, now).await;
                    relay.announce_presence(user, false, Some(now)).await;
                }
            }
            Err(err) => tracing::warn!(%err, "could not look for dead nodes"),
        }
    }
}
