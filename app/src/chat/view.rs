//! What the chat views read: the state machine's data, projected into reactive pieces that
//! change one at a time, so that an incoming message renders one bubble and an
//! acknowledgement re-renders one status, not the conversation.
//!
//! Two shapes, each for what it holds:
//! - the conversation list is a keyed store (`reactive_stores`): a few dozen rows, reordered
//!   by activity; a keyed patch after each change notifies only the fields that changed and
//!   the order when it changed;
//! - an open conversation is a list of keys plus one signal per message (the todomvc shape):
//!   it may hold thousands of messages and grows at the end, so an arrival is one key pushed
//!   and one signal made, an acknowledgement one signal set.
//!
//! [`ChatView::redraw`] is the only writer; it reads the state, never changes it.
use std::collections::HashMap;
use std::sync::Arc;

use leptos::prelude::*;
use reactive_stores::{Patch, Store};

use super::state::{ChatMessage, ChatState, Conversation, Delivery, Part, Person, Status};
use crate::clock;
use crate::protocol::{Content, Me, Peer, Presence};

/// One row of the conversation list.
#[derive(Debug, Clone, PartialEq, Store, Patch)]
pub struct ListRow {
    #[patch(|this, new| *this = new)]
    pub peer: Peer,
    pub title: String,
    pub avatar: String,
    pub username: String,
    /// The newest message: whether it is the user's, what it says, when.
    #[patch(|this, new| *this = new)]
    pub newest: Option<(bool, Content, i64)>,
    pub unread: u64,
    /// One of the user's messages there was refused.
    pub failed: bool,
    /// For ordering: the newest stored id, or "now" while something is being sent.
    pub activity: i64,
}

/// The conversation list, newest activity first.
#[derive(Debug, Clone, Default, Store, Patch)]
pub struct ConversationList {
    #[store(key: Peer = |row| row.peer.clone())]
    pub rows: Vec<ListRow>,
}

/// An open conversation's header and state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    pub title: String,
    pub avatar: String,
    pub username: String,
    /// Who is typing, until when (ms since the epoch).
    pub typing: Option<(String, f64)>,
    pub loading_history: bool,
    pub history_loaded: bool,
    pub more_history: bool,
    /// How many messages are loaded (0 with history loaded: "no messages yet").
    pub loaded: usize,
}

/// One bubble.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: String,
    pub id: Option<i64>,
    pub client_id: String,
    pub mine: bool,
    /// Who sent it, in a group and not the user.
    pub sender: Option<Person>,
    /// The sender's id (for the avatar's colour).
    pub from: String,
    pub content: Content,
    pub created_at: i64,
    pub delivery: Delivery,
    /// The friend has read it (1:1, the user's own).
    pub read: bool,
    /// The first message of its day: a separator goes above it.
    pub new_day: bool,
}

/// Most bubbles in one chunk of the list.
pub const CHUNK: usize = 50;

/// A run of consecutive messages, drawn in a box of its own: a message arriving changes the
/// last chunk's list and layout only, however long the conversation.
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    /// Names the chunk for the keyed list; never reused.
    pub id: u64,
    /// Its messages' keys in order (shared strings: the keyed list clones them).
    pub keys: RwSignal<Vec<Arc<str>>>,
}

/// The reactive pieces of one open conversation.
#[derive(Clone, Copy)]
pub struct ConversationView {
    pub header: RwSignal<Header>,
    /// The messages in chunks, in order.
    pub chunks: RwSignal<Vec<Chunk>>,
    rows: StoredValue<HashMap<String, RwSignal<Row>>>,
    next_chunk: StoredValue<u64>,
    /// The pane's owner: rows made later (by whatever input) live as long as the pane,
    /// not as long as the effect or task that happened to deliver them.
    owner: StoredValue<Owner>,
}

impl ConversationView {
    /// The signal of one message (for the bubble keyed by it).
    pub fn row(&self, key: &str) -> Option<RwSignal<Row>> {
        self.rows
            .try_with_value(|rows| rows.get(key).copied())
            .flatten()
    }

    fn new_row(&self, row: Row) -> RwSignal<Row> {
        self.owned(|| RwSignal::new(row))
    }

    /// Makes a reactive value under the pane's owner.
    fn owned<T>(&self, make: impl FnOnce() -> T) -> T {
        match self.owner.try_get_value() {
            Some(owner) => owner.with(make),
            None => make(),
        }
    }

    fn new_chunk(&self, keys: Vec<Arc<str>>) -> Chunk {
        let id = self.next_chunk.try_get_value().unwrap_or_default();
        self.next_chunk.try_set_value(id + 1);
        Chunk {
            id,
            keys: self.owned(|| RwSignal::new(keys)),
        }
    }

    /// Every key in order.
    fn all_keys(&self) -> Vec<Arc<str>> {
        self.chunks
            .try_with_untracked(|chunks| {
                chunks
                    .iter()
                    .flat_map(|c| c.keys.try_get_untracked().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many messages are drawn, and the first one's key (for keeping the reader's
    /// place when older ones are put above).
    pub fn shape(&self) -> (usize, Option<Arc<str>>) {
        self.chunks.with(|chunks| {
            let len = chunks.iter().map(|c| c.keys.with(Vec::len)).sum();
            let first = chunks
                .first()
                .and_then(|c| c.keys.with(|k| k.first().cloned()));
            (len, first)
        })
    }

    /// Appends one key: to the last chunk while it has room, else in a new chunk.
    fn push(&self, key: Arc<str>) {
        let last = self
            .chunks
            .try_with_untracked(|c| c.last().copied())
            .flatten();
        match last {
            Some(chunk) if chunk.keys.try_with_untracked(Vec::len).unwrap_or(CHUNK) < CHUNK => {
                chunk.keys.try_update(|k| k.push(key));
            }
            _ => {
                let chunk = self.new_chunk(vec![key]);
                self.chunks.try_update(|c| c.push(chunk));
            }
        }
    }

    /// Sets the whole order. Chunks already drawn stay when the list only grew at either
    /// end (a page of history above, a sync below); anything else is drawn again.
    fn set_keys(&self, keys: Vec<Arc<str>>) {
        let old = self.all_keys();
        if old == keys {
            return;
        }
        if !old.is_empty() && keys.len() > old.len() && keys.ends_with(&old) {
            let added = &keys[..keys.len() - old.len()];
            let mut front: Vec<Chunk> = added
                .chunks(CHUNK)
                .map(|c| self.new_chunk(c.to_vec()))
                .collect();
            self.chunks.try_update(|chunks| {
                front.append(chunks);
                *chunks = front;
            });
        } else if !old.is_empty() && keys.len() > old.len() && keys.starts_with(&old) {
            for key in &keys[old.len()..] {
                self.push(key.clone());
            }
        } else {
            let chunks: Vec<Chunk> = keys
                .chunks(CHUNK)
                .map(|c| self.new_chunk(c.to_vec()))
                .collect();
            self.chunks.try_set(chunks);
        }
    }
}

/// Everything the chat views read.
#[derive(Clone, Copy)]
pub struct ChatView {
    pub status: RwSignal<Status>,
    pub me: RwSignal<Option<Me>>,
    pub presence: RwSignal<HashMap<String, Presence>>,
    pub unread: RwSignal<u64>,
    pub list: Store<ConversationList>,
    /// Moves when the directory of names changes.
    pub names: RwSignal<u64>,
    open: StoredValue<HashMap<Peer, ConversationView>>,
}

impl ChatView {
    pub fn new() -> Self {
        Self {
            status: RwSignal::new(Status::Connecting),
            me: RwSignal::new(None),
            presence: RwSignal::new(HashMap::new()),
            unread: RwSignal::new(0),
            list: Store::new(ConversationList::default()),
            names: RwSignal::new(0),
            open: StoredValue::new(HashMap::new()),
        }
    }

    /// The view of a conversation a pane shows, made from the state now; kept up to date
    /// until [`ChatView::close`].
    pub fn open(&self, state: &ChatState, peer: &Peer) -> ConversationView {
        if let Some(view) = self.open.with_value(|open| open.get(peer).copied()) {
            return view;
        }
        let view = ConversationView {
            header: RwSignal::new(Header::default()),
            chunks: RwSignal::new(Vec::new()),
            rows: StoredValue::new(HashMap::new()),
            next_chunk: StoredValue::new(0),
            owner: StoredValue::new(Owner::current().unwrap_or_default()),
        };
        self.open.update_value(|open| {
            open.insert(peer.clone(), view);
        });
        self.redraw_header(state, peer, &view);
        self.redraw_messages(state, peer, &view);
        view
    }

    /// Stops keeping a conversation's view (its pane went away).
    pub fn close(&self, peer: &Peer) {
        self.open.update_value(|open| {
            open.remove(peer);
        });
    }

    /// Brings what changed up to date with the state.
    pub fn redraw(&self, state: &ChatState, parts: &[Part]) {
        let mut list = false;
        for part in parts {
            match part {
                Part::Status => self.status.set(state.status),
                Part::Me => self.me.set(state.me.clone()),
                Part::Presence => self.presence.set(state.presence.clone()),
                Part::List => list = true,
                Part::Names => {
                    list = true;
                    self.names.update(|n| *n += 1);
                    for (peer, view) in self.open_views() {
                        self.redraw_header(state, &peer, &view);
                        self.redraw_messages(state, &peer, &view);
                    }
                }
                Part::Conversation(peer) => {
                    list = true;
                    if let Some(view) = self.view_of(peer) {
                        self.redraw_header(state, peer, &view);
                    }
                }
                Part::Message(peer, key) => {
                    if let Some(view) = self.view_of(peer) {
                        self.redraw_message(state, peer, &view, key);
                    }
                }
                Part::Messages(peer) => {
                    if let Some(view) = self.view_of(peer) {
                        self.redraw_messages(state, peer, &view);
                    }
                }
            }
        }
        if list {
            self.redraw_list(state);
        }
    }

    fn view_of(&self, peer: &Peer) -> Option<ConversationView> {
        self.open
            .try_with_value(|open| open.get(peer).copied())
            .flatten()
    }

    fn open_views(&self) -> Vec<(Peer, ConversationView)> {
        self.open
            .try_with_value(|open| open.iter().map(|(p, v)| (p.clone(), *v)).collect())
            .unwrap_or_default()
    }

    fn redraw_list(&self, state: &ChatState) {
        let me = state.my_id();
        let mut rows: Vec<ListRow> = state
            .conversations
            .values()
            .map(|c| ListRow {
                peer: c.with.clone(),
                title: state.title_of(c),
                avatar: avatar_of(state, c),
                username: username_of(state, c),
                newest: c
                    .newest()
                    .map(|m| (m.is_mine(me), m.content.clone(), m.created_at)),
                unread: c.unread,
                failed: c
                    .messages
                    .iter()
                    .any(|m| matches!(m.delivery, Delivery::Failed(_))),
                activity: c.activity(),
            })
            // A conversation nobody can name and nothing was said in is not listed yet.
            .filter(|r| !r.title.is_empty() || r.newest.is_some())
            .collect();
        rows.sort_by(|a, b| {
            b.activity
                .cmp(&a.activity)
                .then_with(|| a.title.cmp(&b.title))
        });
        self.list.rows().patch(rows);
        let unread = state.total_unread();
        if self.unread.get_untracked() != unread {
            self.unread.set(unread);
        }
    }

    fn redraw_header(&self, state: &ChatState, peer: &Peer, view: &ConversationView) {
        let header = match state.conversations.get(peer) {
            Some(c) => Header {
                title: state.title_of(c),
                avatar: avatar_of(state, c),
                username: username_of(state, c),
                typing: c.typing.clone(),
                loading_history: c.loading_history,
                history_loaded: c.history_loaded,
                more_history: c.more_history,
                loaded: c.messages.len(),
            },
            None => Header {
                title: match peer {
                    Peer::User(id) => state
                        .person(id)
                        .map(|p| p.name().to_owned())
                        .unwrap_or_default(),
                    Peer::Group(_) => String::new(),
                },
                more_history: true,
                ..Header::default()
            },
        };
        if view.header.try_with_untracked(|h| *h != header) == Some(true) {
            view.header.try_set(header);
        }
    }

    /// One message changed or arrived at the end.
    fn redraw_message(&self, state: &ChatState, peer: &Peer, view: &ConversationView, key: &str) {
        let Some(conv) = state.conversations.get(peer) else {
            return;
        };
        let me = state.my_id();
        // Usually the newest: searched from the end.
        let Some(at) = conv.messages.iter().rposition(|m| m.has_key(key, me)) else {
            // Not loaded here (history not open yet): nothing on screen to change.
            return;
        };
        let row = project(state, conv, at);
        match view.row(key) {
            Some(signal) => {
                if signal.try_with_untracked(|r| *r != row) == Some(true) {
                    signal.try_set(row);
                }
            }
            None if at + 1 == conv.messages.len() => {
                let signal = view.new_row(row);
                view.rows.update_value(|rows| {
                    rows.insert(key.to_owned(), signal);
                });
                view.push(Arc::from(key));
            }
            None => self.redraw_messages(state, peer, view),
        }
    }

    /// The whole list of a conversation: rows that changed are set, new ones made, gone
    /// ones dropped; the order is set once.
    fn redraw_messages(&self, state: &ChatState, peer: &Peer, view: &ConversationView) {
        let me = state.my_id();
        let Some(conv) = state.conversations.get(peer) else {
            return;
        };
        let mut keys = Vec::with_capacity(conv.messages.len());
        let mut fresh = HashMap::with_capacity(conv.messages.len());
        for at in 0..conv.messages.len() {
            let row = project(state, conv, at);
            let key = row.key.clone();
            let signal = match view.row(&key) {
                Some(signal) => {
                    if signal.try_with_untracked(|r| *r != row) == Some(true) {
                        signal.try_set(row);
                    }
                    signal
                }
                None => view.new_row(row),
            };
            keys.push(Arc::from(key.as_str()));
            fresh.insert(key, signal);
        }
        let _ = me;
        view.rows.set_value(fresh);
        view.set_keys(keys);
    }
}

impl Default for ChatView {
    fn default() -> Self {
        Self::new()
    }
}

/// A person's picture as the contact lists last said (they are reloaded when a friend
/// changes it), else as `ready` said.
fn avatar_of(state: &ChatState, c: &Conversation) -> String {
    match &c.with {
        Peer::User(id) => state
            .person(id)
            .map_or_else(|| c.avatar.clone(), |p| p.avatar.clone()),
        Peer::Group(_) => c.avatar.clone(),
    }
}

fn username_of(state: &ChatState, c: &Conversation) -> String {
    match (&c.with, c.username.is_empty()) {
        (Peer::User(id), true) => state
            .person(id)
            .map(|p| p.username.clone())
            .unwrap_or_default(),
        _ => c.username.clone(),
    }
}

/// The bubble of message `at` of a conversation.
fn project(state: &ChatState, conv: &Conversation, at: usize) -> Row {
    let me = state.my_id();
    let m: &ChatMessage = &conv.messages[at];
    let mine = m.is_mine(me);
    let new_day = at == 0
        || clock::local_day(conv.messages[at - 1].created_at) != clock::local_day(m.created_at);
    let sender = (!mine && conv.with.is_group()).then(|| {
        state.person(&m.from).cloned().unwrap_or(Person {
            id: m.from.clone(),
            ..Person::default()
        })
    });
    Row {
        key: m.key(me),
        id: m.id,
        client_id: m.client_id.clone(),
        mine,
        sender,
        from: m.from.clone(),
        content: m.content.clone(),
        created_at: m.created_at,
        delivery: m.delivery,
        read: mine && !conv.with.is_group() && m.id.is_some_and(|id| id <= conv.peer_read_up_to),
        new_day,
    }
}
