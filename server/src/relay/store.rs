//! The message writer: one task per server process that stores messages in batches (many
//! per transaction), then, for each message in order, acknowledges it to the sending
//! connection and only after that delivers it to the recipients. Under load a batch holds
//! everything that arrived while the previous one was being written; alone, a message is
//! written at once. Delivery happens here, not in the sender's connection, so a sender that
//! disconnects right after sending still gets its message delivered.
//!
//! On SQLite the writer also owns checkpoints (copying the write-ahead log back into the
//! database file), in two steps so that no message waits on one: a background task copies
//! the bulk four times a second while batches go on being written, and once the log is long
//! the writer, between two batches, copies the few pages written meanwhile; with the whole
//! log copied, the next commit starts the log over. Left to SQLite, a commit every thousand
//! pages would copy everything itself (tens of milliseconds: a stall every sender would
//! feel), and a checkpoint running only beside the writer never catches up with it, so the
//! log would grow without end under steady load.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use app::error::{ApiError, ErrorCode};
use app::protocol::ServerEvent;
use app::ssr::messages::{self, NewMessage};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::hub::Connection;
use super::{Bus, frame};

/// Most messages in one transaction. With thousands of conversations a message rewrites one
/// page of each index; the more messages a commit holds, the more of them share pages:
/// 10,000 connections at full load on SQLite stored 17,900 messages/s with 2,048 and
/// 23,900/s with 8,192. Only a long queue fills a batch, so latency at ordinary load is
/// the same.
const MAX_BATCH: usize = 8192;
/// How often the background step of a checkpoint runs (SQLite).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// The log length (pages) from which the writer takes the tail step. Below it the log
/// starts over by itself whenever writing pauses; the tail step costs two `fsync`s
/// (milliseconds each), so it is kept for a log that keeps growing. 32 MB, half the
/// `journal_size_limit` (server/src/lib.rs): a log that starts over below that limit is
/// written again in place, where a longer one is first cut back, which stalled the next
/// commit 60–80 ms (10,000 connections at 5,000 messages a second: one stall every 4 s).
const TAIL_AT_PAGES: i64 = 8_192;

/// One message to store, the connection that sent it (for the acknowledgement; none for
/// what the server writes itself, such as call records) and who receives it.
pub struct Job {
    pub message: NewMessage,
    pub sender: Option<Connection>,
    pub recipients: Vec<Uuid>,
}

#[derive(Clone)]
pub struct MessageStore {
    queue: mpsc::Sender<Job>,
    /// Messages submitted and not yet stored (or refused).
    pending: Arc<AtomicUsize>,
}

impl MessageStore {
    /// Starts the writer task; `capacity` bounds the messages waiting to be written (a full
    /// queue makes senders wait, which slows only them).
    pub fn start(db: DatabaseConnection, bus: Arc<dyn Bus>, capacity: usize) -> Self {
        let (queue, rx) = mpsc::channel(capacity);
        let tail_due = (db.get_database_backend() == DbBackend::Sqlite).then(|| {
            let due = Arc::new(AtomicBool::new(false));
            tokio::spawn(checkpoint_loop(db.clone(), Arc::downgrade(&due)));
            due
        });
        let pending = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write_loop(db, bus, rx, tail_due, pending.clone()));
        Self { queue, pending }
    }

    pub async fn submit(&self, job: Job) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::error::SendError(job)) = self.queue.send(job).await {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            refuse(&job, ApiError::internal("the message writer has stopped"));
        }
    }

    /// Waits until every message submitted so far is stored (and acknowledged), or until
    /// `deadline`; answers how many were still waiting then.
    pub async fn flush(&self, deadline: tokio::time::Instant) -> usize {
        loop {
            let pending = self.pending.load(Ordering::Acquire);
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                return pending;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn refuse(job: &Job, err: ApiError) {
    if let Some(sender) = &job.sender {
        sender.push(frame(&ServerEvent::Error {
            code: err.code,
            message: err.message,
            client_id: Some(job.message.client_id.clone()),
        }));
    }
}

/// The background step: copies the log while the writer goes on, then asks the writer for
/// the tail. Ends with the writer.
async fn checkpoint_loop(db: DatabaseConnection, tail_due: Weak<AtomicBool>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(due) = tail_due.upgrade() else {
            return;
        };
        if checkpoint(&db, "background").await >= TAIL_AT_PAGES {
            due.store(true, Ordering::Release);
        }
    }
}

/// One `PASSIVE` checkpoint: never waits for writers or readers, copies what it can.
/// Answers the length of the log in pages (0 when unknown).
async fn checkpoint(db: &DatabaseConnection, step: &'static str) -> i64 {
    let started = std::time::Instant::now();
    let sql = Statement::from_string(DbBackend::Sqlite, "PRAGMA wal_checkpoint(PASSIVE)");
    match db.query_one_raw(sql).await {
        Ok(Some(row)) => {
            let log_pages = row.try_get_by_index::<i64>(1).unwrap_or(0);
            tracing::debug!(
                step,
                log_pages,
                copied = row.try_get_by_index::<i64>(2).unwrap_or(-1),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "checkpoint"
            );
            log_pages
        }
        Ok(None) => 0,
        Err(err) => {
            tracing::warn!(%err, step, "checkpoint failed");
            0
        }
    }
}

async fn write_loop(
    db: DatabaseConnection,
    bus: Arc<dyn Bus>,
    mut rx: mpsc::Receiver<Job>,
    tail_due: Option<Arc<AtomicBool>>,
    pending: Arc<AtomicUsize>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut known = messages::KnownConversations::default();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let messages: Vec<NewMessage> = batch.iter().map(|j| j.message.clone()).collect();
        let started = std::time::Instant::now();
        let result = messages::store_batch(&db, &messages, &mut known).await;
        metrics::histogram!("qc_persist_seconds").record(started.elapsed().as_secs_f64());
        tracing::debug!(
            count = messages.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "stored a batch"
        );
        match result {
            Ok(stored) => {
                let handing_out = std::time::Instant::now();
                let fresh = stored.iter().filter(|s| !s.duplicate).count();
                metrics::counter!("qc_messages_persisted_total").increment(fresh as u64);
                for (job, stored) in batch.drain(..).zip(stored) {
                    if let Some(sender) = &job.sender {
                        sender.push(frame(&ServerEvent::Ack {
                            client_id: stored.view.client_id.clone(),
                            id: stored.view.id,
                            created_at: stored.view.created_at,
                        }));
                    }
                    if !stored.duplicate {
                        let message = frame(&ServerEvent::Message(stored.view));
                        bus.publish(&job.recipients, &message, job.sender.as_ref().map(|s| s.id));
                    }
                }
                metrics::histogram!("qc_fanout_seconds")
                    .record(handing_out.elapsed().as_secs_f64());
            }
            Err(err) => {
                tracing::error!(%err, count = messages.len(), "storing a batch of messages failed");
                for job in batch.drain(..) {
                    refuse(
                        &job,
                        ApiError::new(
                            ErrorCode::Unavailable,
                            "The message could not be stored; send it again.",
                        ),
                    );
                }
            }
        }
        pending.fetch_sub(messages.len(), Ordering::AcqRel);
        if let Some(due) = &tail_due
            && due.swap(false, Ordering::Acquire)
        {
            checkpoint(&db, "tail").await;
        }
    }
}
