//! The message writer: one task per server process that stores messages in batches (many
//! per transaction), then, for each message in order, acknowledges it to the sending
//! connection and only after that delivers it to the recipients. Under load a batch holds
//! everything that arrived while the previous one was being written; alone, a message is
//! written at once. Delivery happens here, not in the sender's connection, so a sender that
//! disconnects right after sending still gets its message delivered.
use std::sync::Arc;

use app::error::{ApiError, ErrorCode};
use app::protocol::ServerEvent;
use app::ssr::messages::{self, NewMessage};
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::hub::Connection;
use super::{Bus, frame};

/// Most messages in one transaction.
const MAX_BATCH: usize = 512;

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
}

impl MessageStore {
    /// Starts the writer task; `capacity` bounds the messages waiting to be written (a full
    /// queue makes senders wait, which slows only them).
    pub fn start(db: DatabaseConnection, bus: Arc<dyn Bus>, capacity: usize) -> Self {
        let (queue, rx) = mpsc::channel(capacity);
        tokio::spawn(write_loop(db, bus, rx));
        Self { queue }
    }

    pub async fn submit(&self, job: Job) {
        if let Err(mpsc::error::SendError(job)) = self.queue.send(job).await {
            refuse(&job, ApiError::internal("the message writer has stopped"));
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

async fn write_loop(db: DatabaseConnection, bus: Arc<dyn Bus>, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let messages: Vec<NewMessage> = batch.iter().map(|j| j.message.clone()).collect();
        let started = std::time::Instant::now();
        let result = messages::store_batch(&db, &messages).await;
        tracing::debug!(
            count = messages.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "stored a batch"
        );
        match result {
            Ok(stored) => {
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
    }
}
