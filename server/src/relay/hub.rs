//! Who is connected: every open WebSocket of every user on this server process, and the one
//! way to hand a frame to them. Handing over never waits: each connection has a bounded
//! queue, and a connection whose queue is full is cut off (it reconnects and syncs) so that
//! one slow reader can never hold up anybody else. Each connection knows the session it
//! was opened with, so ending a session closes exactly its connections.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use app::protocol::close;
use app::ssr::EndedSessions;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// One frame on its way to a connection, serialized once and shared by all recipients.
pub type Frame = axum::extract::ws::Utf8Bytes;

/// The handle the hub keeps for one connection.
#[derive(Clone)]
pub struct Connection {
    pub id: u64,
    pub user: Uuid,
    /// The session (token hash) the connection was opened with.
    pub session: Arc<str>,
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
                metrics::counter!("qc_ws_queue_full_total").increment(1);
                self.close(close::TOO_SLOW, "too slow: reconnect and sync");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

pub struct Hub {
    users: RwLock<HashMap<Uuid, Vec<Connection>>>,
    next_id: AtomicU64,
}

impl Default for Hub {
    /// Connection ids start at a random multiple of 2³², so that the ids of different
    /// server processes (the nodes of a cluster) do not meet: a node can name a connection
    /// on another one.
    fn default() -> Self {
        let high = (Uuid::new_v4().as_u128() >> 96) as u64;
        Self {
            users: RwLock::default(),
            next_id: AtomicU64::new(high << 32),
        }
    }
}

impl Hub {
    /// A new connection handle for `user`'s `session` with a queue of `capacity` frames, and
    /// the queue's receiving end (for the connection's writer task).
    pub fn connection(
        &self,
        user: Uuid,
        session: &str,
        capacity: usize,
    ) -> (Connection, mpsc::Receiver<Frame>) {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let conn = Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            user,
            session: session.into(),
            queue,
            closed: CancellationToken::new(),
            reason: Arc::new(std::sync::Mutex::new(None)),
        };
        (conn, rx)
    }

    /// Adds a connection unless its user has `max` open already. `Some(true)` when it is the
    /// user's first (they just came online), `None` when refused.
    pub fn register(&self, conn: Connection, max: usize) -> Option<bool> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let list = users.entry(conn.user).or_default();
        if list.len() >= max.max(1) {
            return None;
        }
        list.push(conn);
        Some(list.len() == 1)
    }

    /// Closes `user`'s connections whose session is among `which`; answers how many.
    pub fn close_sessions(&self, user: Uuid, which: &EndedSessions) -> usize {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let mut closed = 0;
        for conn in users.get(&user).into_iter().flatten() {
            if which.includes(&conn.session) {
                conn.close(close::SESSION_ENDED, "the session has ended: sign in again");
                closed += 1;
            }
        }
        closed
    }

    /// The sessions that have connections open, each once.
    pub fn sessions(&self) -> Vec<(Uuid, Arc<str>)> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::HashSet::new();
        users
            .values()
            .flatten()
            .filter(|c| seen.insert(c.session.clone()))
            .map(|c| (c.user, c.session.clone()))
            .collect()
    }

    /// Closes every connection of the sessions in `ended`.
    pub fn close_ended(&self, ended: &std::collections::HashSet<Arc<str>>) -> usize {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let mut closed = 0;
        for conn in users.values().flatten() {
            if ended.contains(&conn.session) {
                conn.close(close::SESSION_ENDED, "the session has ended: sign in again");
                closed += 1;
            }
        }
        closed
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
    ///
    /// The frames are queued under the read lock, without copying the handles out first:
    /// queueing never waits (a full queue closes its connection, which leaves the hub later,
    /// from its own task), and copying a handle takes its cancellation token's lock twice
    /// (clone and drop), per member of a group, per message.
    pub fn deliver(&self, users: &[Uuid], frame: &Frame, skip: Option<u64>) {
        let map = self.users.read().unwrap_or_else(|e| e.into_inner());
        for conn in users.iter().filter_map(|u| map.get(u)).flatten() {
            if Some(conn.id) != skip {
                conn.push(frame.clone());
            }
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

    /// The users with connections open here.
    pub fn users(&self) -> Vec<Uuid> {
        self.users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Hands `frame` to every connection.
    pub fn deliver_all(&self, frame: &Frame) {
        let map = self.users.read().unwrap_or_else(|e| e.into_inner());
        for conn in map.values().flatten() {
            conn.push(frame.clone());
        }
    }

    /// Closes every connection with `code` (a shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) -> usize {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let mut closed = 0;
        for conn in users.values().flatten() {
            conn.close(code, reason);
            closed += 1;
        }
        closed
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
        let (slow, _slow_rx) = hub.connection(slow_user, "s1", 2);
        let (fast, mut fast_rx) = hub.connection(fast_user, "s2", 2);
        assert_eq!(hub.register(slow.clone(), 10), Some(true));
        assert_eq!(hub.register(fast.clone(), 10), Some(true));
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
        assert_eq!(slow.close_reason().map(|r| r.0), Some(close::TOO_SLOW));
        assert!(!fast.closed.is_cancelled());
    }

    #[test]
    fn online_while_any_connection_is_open() {
        let hub = Hub::default();
        let user = Uuid::new_v4();
        let (a, _ra) = hub.connection(user, "s1", 1);
        let (b, _rb) = hub.connection(user, "s1", 1);
        assert_eq!(hub.register(a.clone(), 10), Some(true));
        assert_eq!(hub.register(b.clone(), 10), Some(false));
        assert!(!hub.unregister(user, a.id));
        assert!(hub.is_online(user));
        assert!(hub.unregister(user, b.id));
        assert!(!hub.is_online(user));
    }

    #[test]
    fn a_user_has_at_most_max_connections() {
        let hub = Hub::default();
        let user = Uuid::new_v4();
        let conns: Vec<_> = (0..3).map(|_| hub.connection(user, "s", 1)).collect();
        assert_eq!(hub.register(conns[0].0.clone(), 2), Some(true));
        assert_eq!(hub.register(conns[1].0.clone(), 2), Some(false));
        assert_eq!(
            hub.register(conns[2].0.clone(), 2),
            None,
            "the third is refused"
        );
        assert!(!hub.unregister(user, conns[0].0.id));
        assert_eq!(
            hub.register(conns[2].0.clone(), 2),
            Some(false),
            "room again"
        );
    }

    #[test]
    fn ending_sessions_closes_exactly_theirs() {
        let hub = Hub::default();
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let (laptop, _r1) = hub.connection(alice, "laptop", 4);
        let (laptop2, _r2) = hub.connection(alice, "laptop", 4);
        let (phone, _r3) = hub.connection(alice, "phone", 4);
        let (bobs, _r4) = hub.connection(bob, "laptop", 4);
        for c in [&laptop, &laptop2, &phone, &bobs] {
            hub.register(c.clone(), 10);
        }
        // Session ids are unique; here Bob's repeats Alice's name to show that ending is
        // per user too. (So only two distinct ids are open.)
        assert_eq!(hub.sessions().len(), 2);
        let closed = hub.close_sessions(alice, &EndedSessions::AllBut("phone".into()));
        assert_eq!(closed, 2, "both tabs of the laptop session");
        assert!(laptop.closed.is_cancelled() && laptop2.closed.is_cancelled());
        assert_eq!(
            laptop.close_reason().map(|r| r.0),
            Some(close::SESSION_ENDED)
        );
        assert!(!phone.closed.is_cancelled());
        assert!(
            !bobs.closed.is_cancelled(),
            "another user's session of the same name"
        );
    }
}
