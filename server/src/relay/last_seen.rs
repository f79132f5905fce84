//! When each user was last online, written in batches by one task. Thousands of
//! connections can close in the same second (an office's network drops, a proxy restarts):
//! written one by one, each of those updates would be a transaction of its own queueing
//! beside the message writer for the database (on SQLite, for its one write lock), and the
//! messages still flowing would wait behind them. Here whatever arrived while the previous
//! batch was written goes into one transaction.
use std::collections::HashMap;

use app::ssr::accounts;
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Most users in one transaction.
const MAX_BATCH: usize = 1024;

#[derive(Clone)]
pub struct LastSeen {
    queue: mpsc::Sender<(Uuid, i64)>,
}

impl LastSeen {
    /// Starts the writer task.
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, rx) = mpsc::channel(16 * 1024);
        tokio::spawn(write_loop(db, rx));
        Self { queue }
    }

    /// Records that `user` was last seen at `at` (Unix milliseconds); waits only while the
    /// queue is full.
    pub async fn record(&self, user: Uuid, at: i64) {
        if self.queue.send((user, at)).await.is_err() {
            tracing::warn!("the last-seen writer has stopped");
        }
    }
}

async fn write_loop(db: DatabaseConnection, mut rx: mpsc::Receiver<(Uuid, i64)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A user who came and went several times counts once, with the latest time.
        let mut latest: HashMap<Uuid, i64> = HashMap::with_capacity(batch.len());
        for (user, at) in batch.drain(..) {
            let time = latest.entry(user).or_insert(at);
            *time = (*time).max(at);
        }
        if let Err(err) = accounts::record_last_seen(&db, &latest).await {
            tracing::warn!(err = %err.message, users = latest.len(), "could not store last_seen_at");
        }
    }
}
