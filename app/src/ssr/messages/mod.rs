//! Messages in the database: storing batches (idempotent, ids in commit order), what a user
//! may see, sync pages, history pages, the conversation list, read cursors. One file per
//! concern: [`store`] writes batches, [`members`] answers who belongs where, [`read`] pages
//! through what a user may see, [`cursor`] moves read cursors, [`summary`] lists
//! conversations.
//!
//! The relay calls these (and `accounts::record_last_seen`); it owns the connections and
//! runs no query of its own (only SQLite's log checkpoint, in `relay/store.rs`).
use sea_orm::DbBackend;
use uuid::Uuid;

use super::entity::chat_record;
use crate::protocol::{Content, MessageView, Peer};

mod cursor;
mod members;
mod read;
mod store;
mod summary;

pub use cursor::mark_read;
pub use members::{friends_of, group_members, last_seen_of, my_groups};
pub use read::{conversation_keys, history_page, last_visible_id, sync_page};
pub use store::{KnownConversations, store_batch};
pub use summary::conversations;

/// `target_kind` of a direct message.
pub const TO_USER: i16 = 1;
/// `target_kind` of a group message.
pub const TO_GROUP: i16 = 2;

/// Whom a message is addressed to, with parsed ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    User(Uuid),
    Group(Uuid),
}

impl Target {
    /// Parses a protocol peer; `None` when the id is not a UUID.
    pub fn parse(peer: &Peer) -> Option<Target> {
        let id = Uuid::parse_str(peer.id()).ok()?;
        Some(if peer.is_group() {
            Target::Group(id)
        } else {
            Target::User(id)
        })
    }

    pub fn peer(self) -> Peer {
        match self {
            Target::User(id) => Peer::User(id.to_string()),
            Target::Group(id) => Peer::Group(id.to_string()),
        }
    }

    fn kind_and_id(self) -> (i16, Uuid) {
        match self {
            Target::User(id) => (TO_USER, id),
            Target::Group(id) => (TO_GROUP, id),
        }
    }
}

/// The stable key of the conversation between `me` and `target`.
pub fn conversation_key(me: Uuid, target: Target) -> String {
    match target {
        Target::User(other) => {
            let (a, b) = if me < other { (me, other) } else { (other, me) };
            format!("d:{a}:{b}")
        }
        Target::Group(g) => format!("g:{g}"),
    }
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sender: Uuid,
    pub client_id: String,
    pub target: Target,
    pub content: Content,
    pub created_at: i64,
}

/// A stored message; `duplicate` when an earlier send with the same client id stored it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub view: MessageView,
    pub duplicate: bool,
}

fn view(row: &chat_record::Model) -> Option<MessageView> {
    let content: Content = serde_json::from_str(&row.body).ok()?;
    let to = match row.target_kind {
        TO_GROUP => Peer::Group(row.target_id.to_string()),
        _ => Peer::User(row.target_id.to_string()),
    };
    Some(MessageView {
        id: row.id,
        client_id: row.client_id.clone(),
        from: row.sender_id.to_string(),
        to,
        content,
        created_at: row.created_at,
    })
}

fn views(rows: &[chat_record::Model]) -> Vec<MessageView> {
    rows.iter().filter_map(view).collect()
}

/// Appends the `n`th (from 1) bind placeholder of a hand-written statement: `$n` on
/// PostgreSQL, `?` elsewhere.
fn push_placeholder(sql: &mut String, backend: DbBackend, n: usize) {
    if backend == DbBackend::Postgres {
        sql.push('$');
        sql.push_str(&n.to_string());
    } else {
        sql.push('?');
    }
}
