//! Who is connected: every open WebSocket of every user on this server process, and the one
//! way to hand a frame to them. Handing over never waits: each connection has a bounded
//! queue, and a connection whose queue is full is cut off (it reconnects and syncs) so that
//! one slow reader can never hold up anybody else.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Close code for a connection that fell behind: reconnect and sync.
pub const CLOSE_TOO_SLOW: u16 = 4001;

/// One frame on its way to a connection, serialized once and shared by all recipients.
pub type Frame = axum::extract::ws::Utf8Bytes;

/// The handle the hub keeps for one connection.
#[derive(Clone)]
pub struct Connection {
    pub id: u64,
    pub user: Uuid,
    queue: mpsc::Sender<Frame>,
    /// Cancelled to close the connection; `reason` says why.
    pub closed: CancellationToken,
    reason: Arc<std::sync::Mutex<Option<(u16, &'static str)>>>,
}

impl Connection {
    /// Closes this connection with a WebSocket close code and reason.
    pub fn close(&self, code: u16, reason: &'static str) {
        if let Ok(mut slot) = self.reason.lock()
            && slot.is_none()
        {
            *slot = Some((code, reason));
        }
        self.closed.cancel();
    }

    /// Why the connection was closed, if it was closed on purpose.
    pub fn close_reason(&self) -> Option<(u16, &'static str)> {
        self.reason.lock().ok().and_then(|r| *r)
    }

    /// Queues a frame; a full queue closes the connection instead of waiting.
    pub fn push(&self, frame: Frame) -> bool {
        match self.queue.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(user = %self.user, conn = self.id, "closing a connection that fell behind");
                self.close(CLOSE_TOO_SLOW, "too slow: reconnect and sync");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[derive(Default)]
pub struct Hub {
    users: RwLock<HashMap<Uuid, Vec<Connection>>>,
    next_id: AtomicU64,
}

impl Hub {
    /// A new connection handle for `user` with a queue of `capacity` frames, and the queue's
    /// receiving end (for the connection's writer task).
    pub fn connection(&self, user: Uuid, capacity: usize) -> (Connection, mpsc::Receiver<Frame>) {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let conn = Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            user,
            queue,
            closed: CancellationToken::new(),
            reason: Arc::new(std::sync::Mutex::new(None)),
        };
        (conn, rx)
    }

    /// Adds a connection; true when it is the user's first (they just came online).
    pub fn register(&self, conn: Connection) -> bool {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let list = users.entry(conn.user).or_default();
        list.push(conn);
        list.len() == 1
    }

    /// Removes a connection; true when it was the user's last (they just went offline).
    pub fn unregister(&self, user: Uuid, id: u64) -> bool {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let Some(list) = users.get_mut(&user) else {
            return false;
        };
        let before = list.len();
        list.retain(|c| c.id != id);
        if list.is_empty() {
            users.remove(&user);
            before > 0
        } else {
            false
        }
    }

    pub fn is_online(&self, user: Uuid) -> bool {
        self.users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&user)
    }

    /// Hands `frame` to every connection of every user in `users`, except `skip`.
    pub fn deliver(&self, users: &[Uuid], frame: &Frame, skip: Option<u64>) {
        let targets: Vec<Connection> = {
            let map = self.users.read().unwrap_or_else(|e| e.into_inner());
            users
                .iter()
                .filter_map(|u| map.get(u))
                .flatten()
                .filter(|c| Some(c.id) != skip)
                .cloned()
                .collect()
        };
        for conn in targets {
            conn.push(frame.clone());
        }
    }

    /// Hands `frame` to one connection of `user`; false when it is not open here.
    pub fn send_to(&self, user: Uuid, id: u64, frame: Frame) -> bool {
        let conn = {
            let map = self.users.read().unwrap_or_else(|e| e.into_inner());
            map.get(&user)
                .and_then(|list| list.iter().find(|c| c.id == id))
                .cloned()
        };
        conn.is_some_and(|c| c.push(frame))
    }

    /// How many connections are open (for logs and benchmarks).
    pub fn connection_count(&self) -> usize {
        self.users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_closes_only_that_connection() {
        let hub = Hub::default();
        let (slow_user, fast_user) = (Uuid::new_v4(), Uuid::new_v4());
        let (slow, _slow_rx) = hub.connection(slow_user, 2);
        let (fast, mut fast_rx) = hub.connection(fast_user, 2);
        assert!(hub.register(slow.clone()));
        assert!(hub.register(fast.clone()));
        for i in 0..5 {
            let frame = Frame::from(format!("{i}"));
            hub.deliver(&[slow_user, fast_user], &frame, None);
            // The fast reader keeps up.
            let got = fast_rx.recv().await.expect("frame");
            assert_eq!(got.as_str(), format!("{i}"));
        }
        assert!(
            slow.closed.is_cancelled(),
            "the reader that never reads is cut off"
        );
        assert_eq!(slow.close_reason().map(|r| r.0), Some(CLOSE_TOO_SLOW));
        assert!(!fast.closed.is_cancelled());
    }

    #[test]
    fn online_while_any_connection_is_open() {
        let hub = Hub::default();
        let user = Uuid::new_v4();
        let (a, _ra) = hub.connection(user, 1);
        let (b, _rb) = hub.connection(user, 1);
        assert!(hub.register(a.clone()));
        assert!(!hub.register(b.clone()));
        assert!(!hub.unregister(user, a.id));
        assert!(hub.is_online(user));
        assert!(hub.unregister(user, b.id));
        assert!(!hub.is_online(user));
    }
}
