//! The signed-in page's chat state and its one WebSocket to the relay.
//!
//! [`Chat`] is provided as context by the shell. It holds the conversations, presence and
//! an outbox of messages not yet acknowledged; it reconnects with exponential backoff and
//! jitter, then syncs from the highest id it has and sends the outbox again with the same
//! client ids (the server stores each once). Only the browser runs the socket (`hydrate`);
//! on the server the state stays empty and the chat views render their loading state.
use std::collections::HashMap;

use leptos::prelude::*;

use crate::error::ErrorCode;
use crate::protocol::{
    ClientMessage, Content, ConversationSummary, Me, MessageView, Peer, Presence, ServerEvent,
};

/// Where a message of the user's own stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Not yet acknowledged by the server (shown as "sending").
    Sending,
    /// Stored by the server ("sent"; "read" once the friend's read cursor passes it).
    Sent,
    /// Refused, with the reason; tapping retries.
    Failed(ErrorCode),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The server id, once acknowledged.
    pub id: Option<i64>,
    pub client_id: String,
    pub from: String,
    pub content: Content,
    pub created_at: i64,
    pub delivery: Delivery,
}

impl ChatMessage {
    fn stored(view: MessageView) -> Self {
        Self {
            id: Some(view.id),
            client_id: view.client_id,
            from: view.from,
            content: view.content,
            created_at: view.created_at,
            delivery: Delivery::Sent,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub with: Peer,
    pub title: String,
    pub avatar: String,
    pub username: String,
    /// Oldest first; unacknowledged messages of the user's own last.
    pub messages: Vec<ChatMessage>,
    pub unread: u64,
    pub read_up_to: i64,
    /// How far the friend has read (1:1).
    pub peer_read_up_to: i64,
    /// The newest message, also when its history is not loaded.
    pub last: Option<ChatMessage>,
    /// Older messages exist on the server.
    pub more_history: bool,
    pub history_loaded: bool,
    pub loading_history: bool,
    /// Who is typing, until when (ms since the epoch).
    pub typing: Option<(String, f64)>,
}

impl Conversation {
    pub fn new(with: Peer) -> Self {
        Self {
            with,
            title: String::new(),
            avatar: String::new(),
            username: String::new(),
            messages: Vec::new(),
            unread: 0,
            read_up_to: 0,
            peer_read_up_to: 0,
            last: None,
            more_history: true,
            history_loaded: false,
            loading_history: false,
            typing: None,
        }
    }

    fn from_summary(s: ConversationSummary) -> Self {
        Self {
            title: s.title,
            avatar: s.avatar,
            username: s.username,
            unread: s.unread,
            read_up_to: s.read_up_to,
            peer_read_up_to: s.peer_read_up_to,
            last: s.last.map(ChatMessage::stored),
            ..Self::new(s.with)
        }
    }

    /// The id of the newest stored message (for ordering the list).
    pub fn activity(&self) -> i64 {
        let pending = self.messages.iter().any(|m| m.id.is_none());
        if pending {
            return i64::MAX;
        }
        self.last.as_ref().and_then(|m| m.id).unwrap_or(0)
    }

    /// Inserts or updates a stored message, keeping id order and no duplicates.
    fn upsert(&mut self, message: ChatMessage) {
        if let Some(existing) = self
            .messages
            .iter_mut()
            .find(|m| m.client_id == message.client_id && m.from == message.from)
        {
            *existing = message.clone();
        } else {
            let id = message.id.unwrap_or(i64::MAX);
            let at = self
                .messages
                .iter()
                .position(|m| m.id.is_none_or(|mid| mid > id));
            match at {
                Some(i) => self.messages.insert(i, message.clone()),
                None => self.messages.push(message.clone()),
            }
        }
        self.messages.sort_by_key(|m| m.id.unwrap_or(i64::MAX));
        if self.last.as_ref().and_then(|l| l.id) <= message.id {
            self.last = Some(message);
        }
    }
}

/// The socket's state, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Connecting,
    Online,
    /// Disconnected; retrying.
    Offline,
    /// Refused: the user has too many tabs or devices connected; retrying slowly.
    TooManyConnections,
}

/// The chat state of the page (a cheap copyable handle).
#[derive(Clone, Copy)]
pub struct Chat {
    pub status: RwSignal<Status>,
    pub me: RwSignal<Option<Me>>,
    pub conversations: RwSignal<HashMap<Peer, Conversation>>,
    pub presence: RwSignal<HashMap<String, Presence>>,
    /// The conversation on screen, if any.
    pub open: RwSignal<Option<Peer>>,
    /// Messages sent but not acknowledged, resent after a reconnect.
    outbox: StoredValue<Vec<(Peer, String, Content)>>,
    /// The highest message id this page has seen.
    cursor: StoredValue<i64>,
    /// Called when contacts change (the shell reloads its lists).
    on_relation: StoredValue<Option<Callback<()>>>,
    /// Called when the server ended this page's session (the shell signs the page out);
    /// only the browser's socket learns of that.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    on_signed_out: StoredValue<Option<Callback<()>>>,
    /// The call on screen, if any.
    pub calls: crate::call::Calls,
    #[cfg(feature = "hydrate")]
    link: StoredValue<client::Link, LocalStorage>,
}

pub fn use_chat() -> Chat {
    expect_context::<Chat>()
}

impl Chat {
    /// Creates the state and, in the browser, opens the socket.
    pub fn provide(on_relation: Callback<()>, on_signed_out: Callback<()>) -> Chat {
        let chat = Chat {
            status: RwSignal::new(Status::Connecting),
            me: RwSignal::new(None),
            conversations: RwSignal::new(HashMap::new()),
            presence: RwSignal::new(HashMap::new()),
            open: RwSignal::new(None),
            outbox: StoredValue::new(Vec::new()),
            cursor: StoredValue::new(-1),
            on_relation: StoredValue::new(Some(on_relation)),
            on_signed_out: StoredValue::new(Some(on_signed_out)),
            calls: crate::call::Calls::new(),
            #[cfg(feature = "hydrate")]
            link: StoredValue::new_local(client::Link::default()),
        };
        provide_context(chat);
        #[cfg(feature = "hydrate")]
        client::start(chat);
        chat
    }

    /// Sum of unread messages over all conversations.
    pub fn total_unread(self) -> u64 {
        self.conversations
            .with(|c| c.values().map(|c| c.unread).sum())
    }

    /// Makes sure a conversation exists locally (opening a chat from Contacts).
    pub fn ensure(self, with: &Peer, title: &str, avatar: &str, username: &str) {
        self.conversations.update(|all| {
            let conv = all
                .entry(with.clone())
                .or_insert_with(|| Conversation::new(with.clone()));
            if conv.title.is_empty() {
                conv.title = title.to_owned();
                conv.avatar = avatar.to_owned();
                conv.username = username.to_owned();
            }
        });
    }

    /// Sends a text; it shows as "sending" until the server acknowledges it.
    pub fn send_text(self, to: Peer, text: String) {
        let client_id = uuid::Uuid::new_v4().to_string();
        let content = Content::Text { text };
        let from = self
            .me
            .with_untracked(|m| m.as_ref().map(|m| m.id.clone()).unwrap_or_default());
        let pending = ChatMessage {
            id: None,
            client_id: client_id.clone(),
            from,
            content: content.clone(),
            created_at: now_ms() as i64,
            delivery: Delivery::Sending,
        };
        unsent::update(&pending.from, |u| {
            u.push(unsent::Unsent {
                to: to.clone(),
                client_id: client_id.clone(),
                content: content.clone(),
                created_at: pending.created_at,
                failed: None,
            })
        });
        self.conversations.update(|all| {
            all.entry(to.clone())
                .or_insert_with(|| Conversation::new(to.clone()))
                .messages
                .push(pending);
        });
        self.outbox
            .update_value(|o| o.push((to.clone(), client_id.clone(), content.clone())));
        self.transmit(&ClientMessage::Send {
            client_id,
            to,
            content,
        });
    }

    /// Sends a failed message again with its client id.
    pub fn retry(self, to: Peer, client_id: String) {
        let mut content = None;
        self.conversations.update(|all| {
            if let Some(m) = all
                .get_mut(&to)
                .and_then(|c| c.messages.iter_mut().find(|m| m.client_id == client_id))
            {
                m.delivery = Delivery::Sending;
                content = Some(m.content.clone());
            }
        });
        if let Some(content) = content {
            unsent::mark(&self.my_id(), &client_id, None);
            self.outbox
                .update_value(|o| o.push((to.clone(), client_id.clone(), content.clone())));
            self.transmit(&ClientMessage::Send {
                client_id,
                to,
                content,
            });
        }
    }

    /// Gives up on a message the server refused: it goes from the screen and the browser's
    /// storage.
    pub fn discard(self, to: &Peer, client_id: &str) {
        self.conversations.update(|all| {
            if let Some(conv) = all.get_mut(to) {
                conv.messages
                    .retain(|m| m.id.is_some() || m.client_id != client_id);
            }
        });
        self.outbox
            .update_value(|o| o.retain(|(_, c, _)| c != client_id));
        unsent::update(&self.my_id(), |u| u.retain(|m| m.client_id != client_id));
    }

    /// Puts back the messages an earlier page of this browser left unsent or refused:
    /// the unsent ones go into the outbox (sent again with their client ids, so the server
    /// stores each once), the refused ones wait for a tap.
    fn restore_unsent(self, me: &str) {
        let saved = unsent::load(me);
        if saved.is_empty() {
            return;
        }
        let mut resend = Vec::new();
        self.conversations.update(|all| {
            for m in saved {
                let conv = all
                    .entry(m.to.clone())
                    .or_insert_with(|| Conversation::new(m.to.clone()));
                if conv.messages.iter().any(|x| x.client_id == m.client_id) {
                    continue;
                }
                if m.failed.is_none() {
                    resend.push((m.to.clone(), m.client_id.clone(), m.content.clone()));
                }
                conv.messages.push(ChatMessage {
                    id: None,
                    client_id: m.client_id,
                    from: me.to_owned(),
                    content: m.content,
                    created_at: m.created_at,
                    delivery: m.failed.map_or(Delivery::Sending, Delivery::Failed),
                });
            }
        });
        self.outbox.update_value(|o| {
            for entry in resend {
                if !o.iter().any(|(_, c, _)| *c == entry.1) {
                    o.push(entry);
                }
            }
        });
    }

    /// Asks for the page of history before the oldest loaded message.
    pub fn load_history(self, with: Peer) {
        let mut before = None;
        let mut go = false;
        self.conversations.update(|all| {
            let conv = all
                .entry(with.clone())
                .or_insert_with(|| Conversation::new(with.clone()));
            if conv.loading_history || (conv.history_loaded && !conv.more_history) {
                return;
            }
            conv.loading_history = true;
            before = conv.messages.iter().filter_map(|m| m.id).min();
            go = true;
        });
        if go {
            self.transmit(&ClientMessage::History {
                with,
                before,
                limit: Some(40),
            });
        }
    }

    /// Marks everything shown in the open conversation as read.
    pub fn mark_read(self, with: &Peer) {
        let me = self.my_id();
        let mut up_to = None;
        self.conversations.update(|all| {
            if let Some(conv) = all.get_mut(with) {
                let newest = conv
                    .messages
                    .iter()
                    .chain(conv.last.iter())
                    .filter(|m| m.from != me)
                    .filter_map(|m| m.id)
                    .max();
                if let Some(newest) = newest
                    && newest > conv.read_up_to
                {
                    conv.read_up_to = newest;
                    up_to = Some(newest);
                }
                conv.unread = 0;
            }
        });
        if let Some(up_to) = up_to {
            self.transmit(&ClientMessage::Read {
                conversation: with.clone(),
                up_to,
            });
        }
    }

    pub fn typing(self, to: Peer) {
        self.transmit(&ClientMessage::Typing { to });
    }

    pub fn my_id(self) -> String {
        self.me
            .with_untracked(|m| m.as_ref().map(|m| m.id.clone()).unwrap_or_default())
    }

    pub(crate) fn transmit(self, message: &ClientMessage) {
        #[cfg(feature = "hydrate")]
        client::transmit(self, message);
        #[cfg(not(feature = "hydrate"))]
        let _ = message;
    }

    /// Applies one event from the server to the state.
    pub fn apply(self, event: ServerEvent) {
        match event {
            ServerEvent::Ready {
                me,
                conversations,
                presence,
                last_id,
                ..
            } => {
                let first = self.cursor.get_value() < 0;
                let my_id = me.id.clone();
                self.me.set(Some(me));
                self.conversations.update(|all| {
                    for summary in conversations {
                        let fresh = Conversation::from_summary(summary);
                        match all.get_mut(&fresh.with) {
                            Some(conv) => {
                                conv.title = fresh.title;
                                conv.avatar = fresh.avatar;
                                conv.username = fresh.username;
                                conv.unread = fresh.unread;
                                conv.read_up_to = fresh.read_up_to;
                                conv.peer_read_up_to = fresh.peer_read_up_to;
                                if fresh.last.as_ref().and_then(|l| l.id)
                                    > conv.last.as_ref().and_then(|l| l.id)
                                {
                                    conv.last = fresh.last;
                                }
                            }
                            None => {
                                all.insert(fresh.with.clone(), fresh);
                            }
                        }
                    }
                });
                self.presence
                    .set(presence.into_iter().map(|p| (p.user.clone(), p)).collect());
                if first {
                    self.cursor.set_value(last_id);
                    self.restore_unsent(&my_id);
                }
                self.status.set(Status::Online);
                // Whatever was committed since the snapshot or while disconnected.
                self.transmit(&ClientMessage::Sync {
                    after: self.cursor.get_value().max(0),
                });
                // Unacknowledged messages go again, with the same client ids.
                for (to, client_id, content) in self.outbox.get_value() {
                    self.transmit(&ClientMessage::Send {
                        client_id,
                        to,
                        content,
                    });
                }
            }
            ServerEvent::Ack {
                client_id,
                id,
                created_at,
            } => {
                let mut peer = None;
                self.outbox.update_value(|o| {
                    if let Some(i) = o.iter().position(|(_, c, _)| *c == client_id) {
                        peer = Some(o.remove(i).0);
                    }
                });
                unsent::update(&self.my_id(), |u| u.retain(|m| m.client_id != client_id));
                self.conversations.update(|all| {
                    let conv = match &peer {
                        Some(p) => all.get_mut(p),
                        None => all
                            .values_mut()
                            .find(|c| c.messages.iter().any(|m| m.client_id == client_id)),
                    };
                    if let Some(conv) = conv
                        && let Some(m) = conv
                            .messages
                            .iter()
                            .find(|m| m.client_id == client_id)
                            .cloned()
                    {
                        conv.upsert(ChatMessage {
                            id: Some(id),
                            created_at,
                            delivery: Delivery::Sent,
                            ..m
                        });
                    }
                });
                self.advance(id);
            }
            ServerEvent::Message(view) => self.receive(view, true),
            ServerEvent::Synced {
                messages,
                more,
                cursor,
            } => {
                for view in messages {
                    self.receive(view, false);
                }
                self.advance(cursor);
                if more {
                    self.transmit(&ClientMessage::Sync { after: cursor });
                }
            }
            ServerEvent::History {
                with,
                messages,
                more,
            } => {
                let me = self.my_id();
                self.conversations.update(|all| {
                    let conv = all
                        .entry(with.clone())
                        .or_insert_with(|| Conversation::new(with.clone()));
                    for view in messages {
                        if view.conversation_for(&me) == with {
                            conv.upsert(ChatMessage::stored(view));
                        }
                    }
                    conv.more_history = more;
                    conv.history_loaded = true;
                    conv.loading_history = false;
                });
            }
            ServerEvent::Receipt {
                conversation,
                reader,
                up_to,
            } => {
                let me = self.my_id();
                self.conversations.update(|all| {
                    if let Some(conv) = all.get_mut(&conversation) {
                        if reader == me {
                            conv.read_up_to = conv.read_up_to.max(up_to);
                            conv.unread = conv
                                .messages
                                .iter()
                                .filter(|m| m.from != me && m.id.is_some_and(|id| id > up_to))
                                .count() as u64;
                        } else {
                            conv.peer_read_up_to = conv.peer_read_up_to.max(up_to);
                        }
                    }
                });
            }
            ServerEvent::Typing { from, conversation } => {
                self.conversations.update(|all| {
                    if let Some(conv) = all.get_mut(&conversation) {
                        conv.typing = Some((from, now_ms() + 5000.0));
                    }
                });
            }
            ServerEvent::Presence(p) => {
                self.presence.update(|all| {
                    all.insert(p.user.clone(), p);
                });
            }
            ServerEvent::Relation {
                change,
                community_id,
                ..
            } => {
                if let (crate::protocol::RelationChange::GroupLeft, Some(group)) =
                    (change, community_id)
                {
                    self.conversations.update(|all| {
                        all.remove(&Peer::Group(group));
                    });
                }
                if let Some(callback) = self.on_relation.get_value() {
                    callback.run(());
                }
            }
            ServerEvent::Error {
                code,
                client_id: Some(client_id),
                ..
            } => {
                if self.call_refused(&client_id, code) {
                    return;
                }
                self.outbox
                    .update_value(|o| o.retain(|(_, c, _)| *c != client_id));
                unsent::mark(&self.my_id(), &client_id, Some(code));
                self.conversations.update(|all| {
                    for conv in all.values_mut() {
                        if let Some(m) = conv.messages.iter_mut().find(|m| m.client_id == client_id)
                        {
                            m.delivery = Delivery::Failed(code);
                        }
                    }
                });
            }
            ServerEvent::Error {
                code,
                message,
                client_id: None,
            } => match code {
                // Typing or reading in a chat with someone who is no longer a friend (or a
                // group just left): expected, and nothing the user needs to see.
                ErrorCode::NotFriends | ErrorCode::NotMember | ErrorCode::RateLimited => {
                    leptos::logging::log!("relay refused a frame: {code:?}: {message}");
                }
                // Anything else is a bug in this client.
                _ => leptos::logging::warn!("relay refused a frame: {code:?}: {message}"),
            },
            ServerEvent::Pong { .. } => {}
            event @ (ServerEvent::CallInvite { .. }
            | ServerEvent::CallRinging { .. }
            | ServerEvent::CallAccepted { .. }
            | ServerEvent::CallEnded { .. }
            | ServerEvent::CallOffer { .. }
            | ServerEvent::CallAnswer { .. }
            | ServerEvent::CallCandidate { .. }) => self.apply_call(event),
        }
    }

    fn advance(self, id: i64) {
        self.cursor.update_value(|c| *c = (*c).max(id));
    }

    /// A stored message from the server (live or from a sync).
    fn receive(self, view: MessageView, live: bool) {
        let me = self.my_id();
        let with = view.conversation_for(&me);
        let id = view.id;
        let mine = view.from == me;
        let open = self.open.get_untracked().as_ref() == Some(&with) && page_visible();
        let mut notify = None;
        self.conversations.update(|all| {
            let conv = all
                .entry(with.clone())
                .or_insert_with(|| Conversation::new(with.clone()));
            let known = conv.messages.iter().any(|m| m.id == Some(id))
                || conv
                    .last
                    .as_ref()
                    .is_some_and(|l| l.id >= Some(id) && !mine);
            let message = ChatMessage::stored(view);
            if conv.history_loaded
                || conv
                    .messages
                    .iter()
                    .any(|m| m.client_id == message.client_id)
            {
                conv.upsert(message.clone());
            } else if conv.last.as_ref().and_then(|l| l.id) < Some(id) {
                conv.last = Some(message.clone());
            }
            if !mine && !known && id > conv.read_up_to && !open {
                conv.unread += 1;
                if live {
                    notify = Some((conv.title.clone(), message.content.preview()));
                }
            }
            conv.typing = None;
        });
        self.advance(id);
        if open && !mine {
            self.mark_read(&with);
        }
        if let Some((title, body)) = notify {
            show_notification(&title, &body);
        }
    }
}

/// Milliseconds since the epoch (the browser's clock; 0 on the server).
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}

/// Whether the page is on screen (a hidden tab gets notifications instead).
pub fn page_visible() -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| !d.hidden())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        true
    }
}

/// A desktop notification, when the tab is hidden and the user allowed them.
fn show_notification(title: &str, body: &str) {
    #[cfg(feature = "hydrate")]
    {
        use web_sys::{Notification, NotificationOptions, NotificationPermission};
        if page_visible() || Notification::permission() != NotificationPermission::Granted {
            return;
        }
        let options = NotificationOptions::new();
        options.set_body(body);
        let _ = Notification::new_with_options(title, &options);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (title, body);
}

mod unsent {
    //! The user's own messages the server has not stored yet (sending, or refused), kept in
    //! the browser's `localStorage` per user: a reload, a crash or a closed tab loses none
    //! of them. Every tab of the user reads and writes the same list, entry by entry.
    use serde::{Deserialize, Serialize};

    use crate::error::ErrorCode;
    use crate::protocol::{Content, Peer};

    /// At most this many are kept (the oldest go first).
    const MAX: usize = 500;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Unsent {
        pub to: Peer,
        pub client_id: String,
        pub content: Content,
        pub created_at: i64,
        /// Why the server refused it, if it did.
        #[serde(default)]
        pub failed: Option<ErrorCode>,
    }

    #[cfg(feature = "hydrate")]
    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    #[cfg(feature = "hydrate")]
    fn key(me: &str) -> String {
        format!("qc.unsent.{me}")
    }

    pub fn load(me: &str) -> Vec<Unsent> {
        #[cfg(feature = "hydrate")]
        {
            storage()
                .and_then(|s| s.get_item(&key(me)).ok().flatten())
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default()
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = me;
            Vec::new()
        }
    }

    /// Reads the list, changes it and writes it back (or removes it once empty).
    pub fn update(me: &str, change: impl FnOnce(&mut Vec<Unsent>)) {
        if me.is_empty() {
            return;
        }
        let mut list = load(me);
        change(&mut list);
        if list.len() > MAX {
            list.drain(..list.len() - MAX);
        }
        #[cfg(feature = "hydrate")]
        if let Some(storage) = storage() {
            let _ = match serde_json::to_string(&list) {
                Ok(text) if !list.is_empty() => storage.set_item(&key(me), &text),
                _ => storage.remove_item(&key(me)),
            };
        }
    }

    /// Records that a message was refused (`Some`) or is being sent again (`None`).
    pub fn mark(me: &str, client_id: &str, failed: Option<ErrorCode>) {
        update(me, |list| {
            if let Some(m) = list.iter_mut().find(|m| m.client_id == client_id) {
                m.failed = failed;
            }
        });
    }
}

#[cfg(feature = "hydrate")]
pub(crate) use client::sleep as sleep_ms;

#[cfg(feature = "hydrate")]
mod client {
    //! The browser side of the socket: connect, read, write, heartbeat, reconnect.
    use futures::channel::mpsc::{UnboundedSender, unbounded};
    use futures::{FutureExt, SinkExt, StreamExt};
    use gloo_net::websocket::futures::WebSocket;
    use gloo_net::websocket::{Message, WebSocketError};
    use leptos::prelude::*;

    use super::{Chat, Status};
    use crate::protocol::{ClientMessage, ServerEvent, close};

    /// The open socket's outgoing queue, while there is one.
    #[derive(Default)]
    pub struct Link {
        pub sender: Option<UnboundedSender<String>>,
        pub stopped: bool,
    }

    pub fn transmit(chat: Chat, message: &ClientMessage) {
        let Ok(text) = serde_json::to_string(message) else {
            return;
        };
        chat.link.with_value(|link| {
            if let Some(sender) = &link.sender {
                let _ = sender.unbounded_send(text);
            }
        });
    }

    fn socket_url() -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        Some(format!("{scheme}://{}/ws", location.host().ok()?))
    }

    /// Waits `ms` milliseconds.
    pub async fn sleep(ms: u32) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(window) = web_sys::window() {
                let _ = window
                    .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    /// The wait before reconnect attempt `n`: doubling from 0.5 s up to 15 s, with jitter so
    /// that many clients do not all come back at the same instant.
    fn backoff(attempt: u32) -> u32 {
        let base = 500u32.saturating_mul(1 << attempt.min(5)).min(15_000);
        let jitter = (js_sys::Math::random() * f64::from(base) * 0.5) as u32;
        base / 2 + jitter
    }

    pub fn start(chat: Chat) {
        on_cleanup(move || {
            chat.link.update_value(|link| {
                link.stopped = true;
                link.sender = None;
            });
        });
        leptos::task::spawn_local(async move {
            let mut attempt = 0u32;
            loop {
                if chat.link.try_with_value(|l| l.stopped).unwrap_or(true) {
                    return;
                }
                chat.status.set(Status::Connecting);
                let mut closed_with = None;
                if let Some(url) = socket_url()
                    && let Ok(socket) = WebSocket::open(&url)
                {
                    let started = js_sys::Date::now();
                    closed_with = session(chat, socket).await;
                    if js_sys::Date::now() - started > 10_000.0 {
                        attempt = 0;
                    }
                }
                if chat.link.try_with_value(|l| l.stopped).unwrap_or(true) {
                    return;
                }
                match closed_with {
                    // Signed out on the server (logout elsewhere, password changed, revoked,
                    // expired, suspended): the page signs out too; reconnecting cannot help.
                    Some(close::SESSION_ENDED) => {
                        if let Some(signed_out) = chat.on_signed_out.try_get_value().flatten() {
                            signed_out.run(());
                        }
                        return;
                    }
                    Some(close::TOO_MANY_CONNECTIONS) => {
                        chat.status.set(Status::TooManyConnections);
                        sleep(30_000 + backoff(attempt)).await;
                    }
                    _ => {
                        chat.status.set(Status::Offline);
                        sleep(backoff(attempt)).await;
                    }
                }
                attempt = attempt.saturating_add(1);
            }
        });
    }

    /// Runs one connection until it ends; answers the close code the server gave, if any.
    async fn session(chat: Chat, socket: WebSocket) -> Option<u16> {
        let (mut write, mut read) = socket.split();
        let (sender, mut outgoing) = unbounded::<String>();
        chat.link.update_value(|link| link.sender = Some(sender));
        let mut closed_with = None;
        let reader = async {
            loop {
                match read.next().await {
                    Some(Ok(Message::Text(text))) => {
                        match serde_json::from_str::<ServerEvent>(&text) {
                            Ok(event) => chat.apply(event),
                            Err(err) => leptos::logging::warn!("unreadable frame: {err}"),
                        }
                    }
                    Some(Ok(Message::Bytes(_))) => {}
                    Some(Err(WebSocketError::ConnectionClose(event))) => {
                        closed_with = Some(event.code);
                        return;
                    }
                    Some(Err(_)) | None => return,
                }
            }
        };
        let writer = async {
            while let Some(text) = outgoing.next().await {
                if write.send(Message::Text(text)).await.is_err() {
                    break;
                }
            }
        };
        // The server closes a silent socket after a minute.
        let heartbeat = async {
            loop {
                sleep(25_000).await;
                transmit(chat, &ClientMessage::Ping { nonce: None });
            }
        };
        futures::select! {
            _ = reader.fuse() => {},
            _ = writer.fuse() => {},
            _ = heartbeat.fuse() => {},
        }
        chat.link.try_update_value(|link| link.sender = None);
        closed_with
    }
}
