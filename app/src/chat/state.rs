//! The chat state of one page as a plain state machine, in the shape of the relay's
//! `calls.rs`: an [`Input`] goes in (what the server said, what the user did, what a driver
//! saw), the state changes, and [`Effect`]s come out (frames to send, a notification to
//! show, the unsent list to store, which parts of the screen changed). No browser API, no
//! signal, no clock of its own: it compiles for both targets and is tested natively.
//!
//! What it keeps: the conversations (messages in server order, the user's unacknowledged
//! ones last), the sync cursor, the outbox of unacknowledged sends, read cursors and unread
//! counts, presence, and a directory of the people it can name (from `ready`, the contact
//! lists and group member lists), so a conversation or a group bubble is never nameless.
use std::collections::{HashMap, HashSet};

use crate::error::ErrorCode;
use crate::protocol::{
    ClientMessage, Content, ConversationSummary, Me, MessageView, Peer, Presence, ServerEvent,
};

/// How long a typing notice shows, in milliseconds.
pub const TYPING_SHOWS_MS: f64 = 5000.0;

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

/// One message as the page knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The server id, once acknowledged.
    pub id: Option<i64>,
    pub client_id: String,
    /// The sender's user id ("" for the user's own, sent before `ready` said who they are).
    pub from: String,
    pub content: Content,
    pub created_at: i64,
    pub delivery: Delivery,
}

impl ChatMessage {
    pub fn stored(view: MessageView) -> Self {
        Self {
            id: Some(view.id),
            client_id: view.client_id,
            from: view.from,
            content: view.content,
            created_at: view.created_at,
            delivery: Delivery::Sent,
        }
    }

    /// Whether the user sent it (`me` is the user's id).
    pub fn is_mine(&self, me: &str) -> bool {
        self.from.is_empty() || self.from == me
    }

    /// The message's key in its conversation: the user's own by client id alone (they may
    /// predate knowing the user's id), others' by sender and client id.
    pub fn key(&self, me: &str) -> String {
        if self.is_mine(me) {
            format!("~{}", self.client_id)
        } else {
            format!("{}/{}", self.from, self.client_id)
        }
    }

    /// Whether `key` (from [`ChatMessage::key`]) names this message; allocates nothing.
    pub fn has_key(&self, key: &str, me: &str) -> bool {
        match key.strip_prefix('~') {
            Some(client_id) => self.is_mine(me) && self.client_id == client_id,
            None => key
                .strip_prefix(self.from.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|client_id| client_id == self.client_id && !self.is_mine(me)),
        }
    }
}

/// A conversation as the page knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub with: Peer,
    /// As the server named it in `ready` (empty: ask the directory).
    pub title: String,
    pub avatar: String,
    pub username: String,
    /// Loaded messages: stored ones in id order, then the user's unacknowledged ones.
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

    /// The id of the newest stored message, or "now" while one of the user's is pending
    /// (for ordering the list).
    pub fn activity(&self) -> i64 {
        if self.messages.iter().any(|m| m.id.is_none()) {
            return i64::MAX;
        }
        self.last.as_ref().and_then(|m| m.id).unwrap_or(0)
    }

    /// The newest message to show in the list: the last loaded one, else `last`.
    pub fn newest(&self) -> Option<&ChatMessage> {
        self.messages.last().or(self.last.as_ref())
    }

    fn position(&self, client_id: &str, from_me: bool, me: &str) -> Option<usize> {
        self.messages
            .iter()
            .position(|m| m.client_id == client_id && m.is_mine(me) == from_me)
    }

    /// Inserts or updates a message, keeping id order (unacknowledged last) and no
    /// duplicates. Answers whether the order of the list changed (an insert anywhere but
    /// at the end, or a move).
    fn upsert(&mut self, message: ChatMessage, me: &str) -> bool {
        let mine = message.is_mine(me);
        let order_key = |m: &ChatMessage| m.id.unwrap_or(i64::MAX);
        let reordered = match self.position(&message.client_id, mine, me) {
            Some(at) if self.messages[at].id == message.id => {
                self.messages[at] = message.clone();
                false
            }
            Some(at) => {
                // An acknowledgement gives an id: the message goes where its id belongs
                // (usually where it was: after every stored message, before the pending).
                self.messages.remove(at);
                let id = order_key(&message);
                let to = self
                    .messages
                    .iter()
                    .position(|m| order_key(m) > id)
                    .unwrap_or(self.messages.len());
                self.messages.insert(to, message.clone());
                to != at
            }
            None => {
                let id = order_key(&message);
                let at = self
                    .messages
                    .iter()
                    .position(|m| order_key(m) > id)
                    .unwrap_or(self.messages.len());
                let at_end = at == self.messages.len();
                self.messages.insert(at, message.clone());
                !at_end
            }
        };
        if self.last.as_ref().and_then(|l| l.id) <= message.id {
            self.last = Some(message);
        }
        reordered
    }
}

/// Someone the page can name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    pub id: String,
    pub username: String,
    pub nickname: String,
    pub avatar: String,
}

impl Person {
    /// The name to show: the nickname, else the username.
    pub fn name(&self) -> &str {
        if self.nickname.is_empty() {
            &self.username
        } else {
            &self.nickname
        }
    }
}

/// The socket's state, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Connecting,
    Online,
    /// Disconnected; retrying.
    Offline,
    /// Refused: the user has too many tabs or devices connected; retrying slowly.
    TooManyConnections,
}

/// A message the server has not stored yet, as kept in the browser's storage (a reload or
/// a closed tab loses none of them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unsent {
    pub to: Peer,
    pub client_id: String,
    pub content: Content,
    pub created_at: i64,
    /// Why the server refused it, if it did.
    #[serde(default)]
    pub failed: Option<ErrorCode>,
}

/// A change to the stored list of unsent messages (applied entry by entry, so that every
/// tab of the user shares one list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsentChange {
    Add(Unsent),
    /// Refused (`Some`) or being sent again (`None`).
    Mark(String, Option<ErrorCode>),
    Remove(String),
}

/// What happened, as the state machine hears it.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The socket is being opened.
    Connecting,
    /// The socket closed; `too_many` when the server refused it for too many connections.
    Disconnected { too_many: bool },
    /// A frame from the server, at `now` (ms since the epoch).
    Server { event: ServerEvent, now: f64 },
    /// The user sends a text, or an upload the server answered (image or file content).
    Send {
        to: Peer,
        client_id: String,
        content: Content,
        now: f64,
    },
    /// The user taps a refused message.
    Retry { to: Peer, client_id: String },
    /// The user deletes a refused message.
    Discard { to: Peer, client_id: String },
    /// The conversation pane wants the page of history before its oldest message.
    LoadHistory(Peer),
    /// The conversation on screen (or none).
    Open(Option<Peer>),
    /// The page became visible or hidden.
    Visible(bool),
    /// The user is typing to a conversation.
    Typing(Peer),
    /// The unsent messages an earlier page left in the browser's storage.
    Restored(Vec<Unsent>),
    /// People the contact lists or a group's member list name.
    People(Vec<Person>),
    /// The groups the user is in, as the contact lists name them (id, name, avatar): each
    /// has a conversation, also before anything was said there.
    Groups(Vec<(String, String, String)>),
}

/// A part of the screen that changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Part {
    Status,
    Me,
    Presence,
    /// Which conversations exist, their order, their rows in the list.
    List,
    /// A conversation's header and list row (name, unread, typing, history state).
    Conversation(Peer),
    /// One message of a conversation: inserted at the end, or changed in place.
    Message(Peer, String),
    /// A conversation's messages changed in bulk (a history page, an insert in the
    /// middle, a removal).
    Messages(Peer),
    /// Names in the directory changed.
    Names,
}

/// What the drivers do for the state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a frame (dropped while offline: the outbox and `sync` make up for it).
    Transmit(ClientMessage),
    /// Show a desktop notification (only while the page is hidden).
    Notify { title: String, body: String },
    /// Change the stored unsent list.
    Unsent(UnsentChange),
    /// Read the stored unsent list and answer [`Input::Restored`].
    RestoreUnsent,
    /// Contacts changed: reload the lists (and answer [`Input::People`]).
    ReloadContacts,
    /// Fetch a group's member list and answer [`Input::People`].
    LookUpGroup(String),
    /// A call frame, or a refusal that names no message (a call id): for the calls.
    Call(ServerEvent),
    /// The socket is open again after it dropped: for the calls (a call goes on over it).
    Reconnected,
    /// A refusal of a frame that names nothing, for the console.
    Refused { code: ErrorCode, message: String },
    /// Redraw this part.
    Changed(Part),
}

/// The chat state of one page.
#[derive(Debug, Clone, Default)]
pub struct ChatState {
    pub status: Status,
    pub me: Option<Me>,
    pub conversations: HashMap<Peer, Conversation>,
    pub presence: HashMap<String, Presence>,
    /// Everyone the page can name, by user id.
    pub people: HashMap<String, Person>,
    /// The conversation on screen.
    pub open: Option<Peer>,
    pub visible: bool,
    /// Sends not yet acknowledged, in order: sent again after a reconnect.
    outbox: Vec<(Peer, String, Content)>,
    /// The highest message id seen; `None` until the first `ready`.
    cursor: Option<i64>,
    /// Groups whose member list was asked for.
    looked_up: HashSet<String>,
}

impl ChatState {
    pub fn new() -> Self {
        Self {
            visible: true,
            ..Self::default()
        }
    }

    /// The pictures of a conversation's loaded messages, oldest first: (media id, name).
    pub fn pictures(&self, with: &Peer) -> Vec<(String, String)> {
        self.conversations.get(with).map_or_else(Vec::new, |c| {
            c.messages
                .iter()
                .filter_map(|m| match &m.content {
                    Content::Image { media, name, .. } => Some((media.clone(), name.clone())),
                    _ => None,
                })
                .collect()
        })
    }

    /// The user's id ("" before the first `ready`).
    pub fn my_id(&self) -> &str {
        self.me.as_ref().map_or("", |m| m.id.as_str())
    }

    /// The messages not yet acknowledged (for tests and the driver's resend).
    pub fn outbox(&self) -> &[(Peer, String, Content)] {
        &self.outbox
    }

    pub fn cursor(&self) -> Option<i64> {
        self.cursor
    }

    /// The sum of unread messages.
    pub fn total_unread(&self) -> u64 {
        self.conversations.values().map(|c| c.unread).sum()
    }

    /// A conversation's name: as the server gave it, else from the directory.
    pub fn title_of(&self, conversation: &Conversation) -> String {
        if !conversation.title.is_empty() {
            return conversation.title.clone();
        }
        match &conversation.with {
            Peer::User(id) => self
                .people
                .get(id)
                .map(|p| p.name().to_owned())
                .unwrap_or_default(),
            Peer::Group(_) => String::new(),
        }
    }

    /// The person behind a user id, if the page can name them.
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.get(id)
    }

    /// Applies one input; answers what the drivers must do.
    pub fn apply(&mut self, input: Input) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            Input::Connecting => self.set_status(Status::Connecting, &mut fx),
            Input::Disconnected { too_many } => {
                let status = if too_many {
                    Status::TooManyConnections
                } else {
                    Status::Offline
                };
                self.set_status(status, &mut fx);
            }
            Input::Server { event, now } => self.server(event, now, &mut fx),
            Input::Send {
                to,
                client_id,
                content,
                now,
            } => self.send(to, client_id, content, now, &mut fx),
            Input::Retry { to, client_id } => self.retry(to, client_id, &mut fx),
            Input::Discard { to, client_id } => self.discard(&to, &client_id, &mut fx),
            Input::LoadHistory(with) => self.load_history(with, &mut fx),
            Input::Open(peer) => {
                self.open = peer.clone();
                if let Some(peer) = peer {
                    self.lookup_names(&peer, &mut fx);
                    self.mark_read(&peer, &mut fx);
                }
            }
            Input::Visible(visible) => {
                self.visible = visible;
                if let Some(peer) = self.open.clone() {
                    self.mark_read(&peer, &mut fx);
                }
            }
            Input::Typing(to) => {
                if self.status == Status::Online {
                    fx.push(Effect::Transmit(ClientMessage::Typing { to }));
                }
            }
            Input::Restored(saved) => self.restore(saved, &mut fx),
            Input::People(people) => {
                let mut changed = false;
                for p in people {
                    if self.people.get(&p.id) != Some(&p) {
                        self.people.insert(p.id.clone(), p);
                        changed = true;
                    }
                }
                if changed {
                    fx.push(Effect::Changed(Part::Names));
                    fx.push(Effect::Changed(Part::List));
                }
            }
            Input::Groups(groups) => {
                for (id, name, avatar) in groups {
                    let peer = Peer::Group(id);
                    let conv = self.conversation(&peer, &mut fx);
                    if conv.title != name || conv.avatar != avatar {
                        conv.title = name;
                        conv.avatar = avatar;
                        fx.push(Effect::Changed(Part::Conversation(peer)));
                    }
                }
            }
        }
        fx
    }

    fn set_status(&mut self, status: Status, fx: &mut Vec<Effect>) {
        if self.status != status {
            self.status = status;
            fx.push(Effect::Changed(Part::Status));
        }
    }

    fn transmit(&self, message: ClientMessage, fx: &mut Vec<Effect>) {
        if self.status == Status::Online {
            fx.push(Effect::Transmit(message));
        }
    }

    fn advance(&mut self, id: i64) {
        self.cursor = Some(self.cursor.map_or(id, |c| c.max(id)));
    }

    fn conversation(&mut self, with: &Peer, fx: &mut Vec<Effect>) -> &mut Conversation {
        if !self.conversations.contains_key(with) {
            fx.push(Effect::Changed(Part::List));
        }
        self.conversations
            .entry(with.clone())
            .or_insert_with(|| Conversation::new(with.clone()))
    }

    /// Asks for a group's member list when a bubble there names someone the page cannot.
    fn lookup_names(&mut self, peer: &Peer, fx: &mut Vec<Effect>) {
        let Peer::Group(group) = peer else { return };
        let me = self.my_id().to_owned();
        let unknown = self.conversations.get(peer).is_some_and(|c| {
            c.messages
                .iter()
                .chain(c.last.iter())
                .any(|m| !m.is_mine(&me) && !self.people.contains_key(&m.from))
        });
        if unknown && self.looked_up.insert(group.clone()) {
            fx.push(Effect::LookUpGroup(group.clone()));
        }
    }

    fn server(&mut self, event: ServerEvent, now: f64, fx: &mut Vec<Effect>) {
        match event {
            ServerEvent::Ready {
                me,
                conversations,
                presence,
                last_id,
                ..
            } => self.ready(me, conversations, presence, last_id, fx),
            ServerEvent::Ack {
                client_id,
                id,
                created_at,
            } => self.ack(&client_id, id, created_at, fx),
            ServerEvent::Message(view) => self.receive(view, true, fx),
            ServerEvent::Synced {
                messages,
                more,
                cursor,
            } => {
                for view in messages {
                    self.receive(view, false, fx);
                }
                self.advance(cursor);
                if more {
                    self.transmit(ClientMessage::Sync { after: cursor }, fx);
                }
            }
            ServerEvent::History {
                with,
                messages,
                more,
            } => {
                let me = self.my_id().to_owned();
                let conv = self.conversation(&with, fx);
                for view in messages {
                    if view.conversation_for(&me) == with {
                        conv.upsert(ChatMessage::stored(view), &me);
                    }
                }
                conv.more_history = more;
                conv.history_loaded = true;
                conv.loading_history = false;
                fx.push(Effect::Changed(Part::Messages(with.clone())));
                fx.push(Effect::Changed(Part::Conversation(with.clone())));
                self.lookup_names(&with, fx);
            }
            ServerEvent::Receipt {
                conversation,
                reader,
                up_to,
            } => self.receipt(conversation, &reader, up_to, fx),
            ServerEvent::Typing { from, conversation } => {
                if let Some(conv) = self.conversations.get_mut(&conversation) {
                    conv.typing = Some((from, now + TYPING_SHOWS_MS));
                    fx.push(Effect::Changed(Part::Conversation(conversation)));
                }
            }
            ServerEvent::Presence(p) => {
                self.presence.insert(p.user.clone(), p);
                fx.push(Effect::Changed(Part::Presence));
            }
            ServerEvent::Relation {
                change,
                community_id,
                username,
            } => {
                // A group member who is no friend changed their name or picture: the
                // member lists the names came from are asked again.
                if change == crate::protocol::RelationChange::ProfileChanged
                    && let Some(name) = username
                    && self.people.values().any(|p| p.username == name)
                {
                    let mut groups: Vec<_> = self.looked_up.iter().cloned().collect();
                    groups.sort();
                    fx.extend(groups.into_iter().map(Effect::LookUpGroup));
                }
                if let (crate::protocol::RelationChange::GroupLeft, Some(group)) =
                    (change, community_id)
                    && self.conversations.remove(&Peer::Group(group)).is_some()
                {
                    fx.push(Effect::Changed(Part::List));
                }
                fx.push(Effect::ReloadContacts);
            }
            ServerEvent::Error {
                code,
                message,
                client_id: Some(client_id),
            } => {
                if !self.refused(&client_id, code, fx) {
                    fx.push(Effect::Call(ServerEvent::Error {
                        code,
                        message,
                        client_id: Some(client_id),
                    }));
                }
            }
            ServerEvent::Error {
                code,
                message,
                client_id: None,
            } => fx.push(Effect::Refused { code, message }),
            ServerEvent::Pong { .. } => {}
            // The server may have dropped events for this page: what was committed comes
            // again by `sync` (ids make repeats harmless), the lists load again.
            ServerEvent::Resync => {
                if let Some(after) = self.cursor {
                    self.transmit(
                        ClientMessage::Sync {
                            after: after.max(0),
                        },
                        fx,
                    );
                }
                fx.push(Effect::ReloadContacts);
            }
            event @ (ServerEvent::CallInvite { .. }
            | ServerEvent::CallRinging { .. }
            | ServerEvent::CallAccepted { .. }
            | ServerEvent::CallEnded { .. }
            | ServerEvent::CallOffer { .. }
            | ServerEvent::CallAnswer { .. }
            | ServerEvent::CallCandidate { .. }) => fx.push(Effect::Call(event)),
        }
    }

    fn ready(
        &mut self,
        me: Me,
        conversations: Vec<ConversationSummary>,
        presence: Vec<Presence>,
        last_id: i64,
        fx: &mut Vec<Effect>,
    ) {
        let first = self.cursor.is_none();
        if self.me.as_ref() != Some(&me) {
            self.people.insert(
                me.id.clone(),
                Person {
                    id: me.id.clone(),
                    username: me.username.clone(),
                    nickname: me.nickname.clone(),
                    avatar: me.avatar.clone(),
                },
            );
            self.me = Some(me);
            fx.push(Effect::Changed(Part::Me));
        }
        for summary in conversations {
            let fresh = Conversation::from_summary(summary);
            let with = fresh.with.clone();
            if let Peer::User(id) = &with
                && !fresh.title.is_empty()
            {
                self.people.insert(
                    id.clone(),
                    Person {
                        id: id.clone(),
                        username: fresh.username.clone(),
                        nickname: fresh.title.clone(),
                        avatar: fresh.avatar.clone(),
                    },
                );
            }
            match self.conversations.get_mut(&with) {
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
                    self.conversations.insert(with.clone(), fresh);
                }
            }
            fx.push(Effect::Changed(Part::Conversation(with)));
        }
        // History asked for on a connection that is gone will not be answered.
        for (peer, conv) in &mut self.conversations {
            if conv.loading_history {
                conv.loading_history = false;
                fx.push(Effect::Changed(Part::Conversation(peer.clone())));
            }
        }
        fx.push(Effect::Changed(Part::List));
        self.presence = presence.into_iter().map(|p| (p.user.clone(), p)).collect();
        fx.push(Effect::Changed(Part::Presence));
        if first {
            self.cursor = Some(last_id);
            fx.push(Effect::RestoreUnsent);
        } else {
            // Relation events sent while the page was away are lost: the lists load again.
            fx.push(Effect::ReloadContacts);
        }
        self.set_status(Status::Online, fx);
        if !first {
            fx.push(Effect::Reconnected);
        }
        // Whatever was committed since the snapshot or while disconnected.
        self.transmit(
            ClientMessage::Sync {
                after: self.cursor.unwrap_or(0).max(0),
            },
            fx,
        );
        // Unacknowledged messages go again, with the same client ids.
        for (to, client_id, content) in self.outbox.clone() {
            self.transmit(
                ClientMessage::Send {
                    client_id,
                    to,
                    content,
                },
                fx,
            );
        }
        if let Some(open) = self.open.clone() {
            self.mark_read(&open, fx);
        }
    }

    fn ack(&mut self, client_id: &str, id: i64, created_at: i64, fx: &mut Vec<Effect>) {
        let me = self.my_id().to_owned();
        let peer = self
            .outbox
            .iter()
            .position(|(_, c, _)| c == client_id)
            .map(|i| self.outbox.remove(i).0);
        fx.push(Effect::Unsent(UnsentChange::Remove(client_id.to_owned())));
        let peer = peer.or_else(|| {
            self.conversations
                .iter()
                .find(|(_, c)| c.position(client_id, true, &me).is_some())
                .map(|(p, _)| p.clone())
        });
        if let Some(peer) = peer
            && let Some(conv) = self.conversations.get_mut(&peer)
            && let Some(at) = conv.position(client_id, true, &me)
        {
            let message = ChatMessage {
                id: Some(id),
                created_at,
                delivery: Delivery::Sent,
                ..conv.messages[at].clone()
            };
            let key = message.key(&me);
            let reordered = conv.upsert(message, &me);
            fx.push(Effect::Changed(if reordered {
                Part::Messages(peer.clone())
            } else {
                Part::Message(peer.clone(), key)
            }));
            fx.push(Effect::Changed(Part::Conversation(peer)));
            fx.push(Effect::Changed(Part::List));
        }
        self.advance(id);
    }

    /// A stored message from the server (live or from a sync).
    fn receive(&mut self, view: MessageView, live: bool, fx: &mut Vec<Effect>) {
        let me = self.my_id().to_owned();
        let with = view.conversation_for(&me);
        let id = view.id;
        let mine = view.from == me;
        let on_screen = self.open.as_ref() == Some(&with) && self.visible;
        let message = ChatMessage::stored(view);
        let key = message.key(&me);
        let conv = self.conversation(&with, fx);
        let known = conv.messages.iter().any(|m| m.id == Some(id))
            || conv
                .last
                .as_ref()
                .is_some_and(|l| l.id >= Some(id) && !mine);
        let loaded = conv.history_loaded || conv.position(&message.client_id, mine, &me).is_some();
        if loaded {
            let reordered = conv.upsert(message.clone(), &me);
            fx.push(Effect::Changed(if reordered {
                Part::Messages(with.clone())
            } else {
                Part::Message(with.clone(), key)
            }));
        } else if conv.last.as_ref().and_then(|l| l.id) < Some(id) {
            conv.last = Some(message.clone());
        }
        let mut notify = false;
        if !mine && !known && id > conv.read_up_to && !on_screen {
            conv.unread += 1;
            notify = live;
        }
        conv.typing = None;
        fx.push(Effect::Changed(Part::Conversation(with.clone())));
        fx.push(Effect::Changed(Part::List));
        self.advance(id);
        if notify && !self.visible {
            let title = match &with {
                Peer::User(_) => self
                    .conversations
                    .get(&with)
                    .map(|c| self.title_of(c))
                    .unwrap_or_default(),
                Peer::Group(_) => {
                    let group = self
                        .conversations
                        .get(&with)
                        .map(|c| self.title_of(c))
                        .unwrap_or_default();
                    match self.person(&message.from) {
                        Some(p) => format!("{} · {group}", p.name()),
                        None => group,
                    }
                }
            };
            fx.push(Effect::Notify {
                title,
                body: message.content.preview(),
            });
        }
        if !mine {
            self.lookup_names(&with, fx);
        }
        if on_screen && !mine {
            self.mark_read(&with, fx);
        }
    }

    fn receipt(&mut self, conversation: Peer, reader: &str, up_to: i64, fx: &mut Vec<Effect>) {
        let me = self.my_id().to_owned();
        let Some(conv) = self.conversations.get_mut(&conversation) else {
            return;
        };
        if reader == me {
            conv.read_up_to = conv.read_up_to.max(up_to);
            conv.unread = conv
                .messages
                .iter()
                .filter(|m| !m.is_mine(&me) && m.id.is_some_and(|id| id > conv.read_up_to))
                .count() as u64;
            fx.push(Effect::Changed(Part::List));
        } else {
            let before = conv.peer_read_up_to;
            conv.peer_read_up_to = before.max(up_to);
            // Only the user's messages between the two cursors turn "read".
            for m in &conv.messages {
                if m.is_mine(&me) && m.id.is_some_and(|id| id > before && id <= up_to) {
                    fx.push(Effect::Changed(Part::Message(
                        conversation.clone(),
                        m.key(&me),
                    )));
                }
            }
        }
        fx.push(Effect::Changed(Part::Conversation(conversation)));
    }

    /// A refusal naming a message: it shows as failed with the reason. False when no
    /// message has this client id (then it is about a call).
    fn refused(&mut self, client_id: &str, code: ErrorCode, fx: &mut Vec<Effect>) -> bool {
        let me = self.my_id().to_owned();
        let in_outbox = self.outbox.iter().any(|(_, c, _)| c == client_id);
        self.outbox.retain(|(_, c, _)| c != client_id);
        let mut found = in_outbox;
        for (peer, conv) in &mut self.conversations {
            if let Some(at) = conv.position(client_id, true, &me) {
                conv.messages[at].delivery = Delivery::Failed(code);
                fx.push(Effect::Changed(Part::Message(
                    peer.clone(),
                    conv.messages[at].key(&me),
                )));
                fx.push(Effect::Changed(Part::Conversation(peer.clone())));
                found = true;
            }
        }
        if found {
            fx.push(Effect::Unsent(UnsentChange::Mark(
                client_id.to_owned(),
                Some(code),
            )));
            fx.push(Effect::Changed(Part::List));
        }
        found
    }

    fn send(
        &mut self,
        to: Peer,
        client_id: String,
        content: Content,
        now: f64,
        fx: &mut Vec<Effect>,
    ) {
        let me = self.my_id().to_owned();
        let pending = ChatMessage {
            id: None,
            client_id: client_id.clone(),
            from: me.clone(),
            content: content.clone(),
            created_at: now as i64,
            delivery: Delivery::Sending,
        };
        fx.push(Effect::Unsent(UnsentChange::Add(Unsent {
            to: to.clone(),
            client_id: client_id.clone(),
            content: content.clone(),
            created_at: pending.created_at,
            failed: None,
        })));
        let key = pending.key(&me);
        self.conversation(&to, fx).messages.push(pending);
        fx.push(Effect::Changed(Part::Message(to.clone(), key)));
        fx.push(Effect::Changed(Part::Conversation(to.clone())));
        fx.push(Effect::Changed(Part::List));
        self.queue_send(to, client_id, content, fx);
    }

    /// Keeps the message in the outbox until its ack (once, however often it is tried) and
    /// sends it now if the socket is open.
    fn queue_send(&mut self, to: Peer, client_id: String, content: Content, fx: &mut Vec<Effect>) {
        if !self.outbox.iter().any(|(_, c, _)| *c == client_id) {
            self.outbox
                .push((to.clone(), client_id.clone(), content.clone()));
        }
        self.transmit(
            ClientMessage::Send {
                client_id,
                to,
                content,
            },
            fx,
        );
    }

    fn retry(&mut self, to: Peer, client_id: String, fx: &mut Vec<Effect>) {
        let me = self.my_id().to_owned();
        let Some(conv) = self.conversations.get_mut(&to) else {
            return;
        };
        let Some(at) = conv.position(&client_id, true, &me) else {
            return;
        };
        let message = &mut conv.messages[at];
        if !matches!(message.delivery, Delivery::Failed(_)) {
            return;
        }
        message.delivery = Delivery::Sending;
        let content = message.content.clone();
        fx.push(Effect::Changed(Part::Message(to.clone(), message.key(&me))));
        fx.push(Effect::Unsent(UnsentChange::Mark(client_id.clone(), None)));
        self.queue_send(to, client_id, content, fx);
    }

    fn discard(&mut self, to: &Peer, client_id: &str, fx: &mut Vec<Effect>) {
        let me = self.my_id().to_owned();
        if let Some(conv) = self.conversations.get_mut(to) {
            let before = conv.messages.len();
            conv.messages
                .retain(|m| m.id.is_some() || m.client_id != client_id || !m.is_mine(&me));
            if conv.messages.len() != before {
                fx.push(Effect::Changed(Part::Messages(to.clone())));
                fx.push(Effect::Changed(Part::Conversation(to.clone())));
                fx.push(Effect::Changed(Part::List));
            }
        }
        self.outbox.retain(|(_, c, _)| c != client_id);
        fx.push(Effect::Unsent(UnsentChange::Remove(client_id.to_owned())));
    }

    /// Puts back the messages an earlier page left unsent or refused: the unsent ones go
    /// into the outbox (sent again with their client ids, so the server stores each once),
    /// the refused ones wait for a tap.
    fn restore(&mut self, saved: Vec<Unsent>, fx: &mut Vec<Effect>) {
        let me = self.my_id().to_owned();
        for m in saved {
            let conv = self.conversation(&m.to, fx);
            if conv.messages.iter().any(|x| x.client_id == m.client_id) {
                continue;
            }
            let message = ChatMessage {
                id: None,
                client_id: m.client_id.clone(),
                from: me.clone(),
                content: m.content.clone(),
                created_at: m.created_at,
                delivery: m.failed.map_or(Delivery::Sending, Delivery::Failed),
            };
            let key = message.key(&me);
            conv.messages.push(message);
            fx.push(Effect::Changed(Part::Message(m.to.clone(), key)));
            fx.push(Effect::Changed(Part::Conversation(m.to.clone())));
            if m.failed.is_none() && !self.outbox.iter().any(|(_, c, _)| *c == m.client_id) {
                self.outbox
                    .push((m.to.clone(), m.client_id.clone(), m.content.clone()));
                self.transmit(
                    ClientMessage::Send {
                        client_id: m.client_id,
                        to: m.to,
                        content: m.content,
                    },
                    fx,
                );
            }
        }
        fx.push(Effect::Changed(Part::List));
    }

    fn load_history(&mut self, with: Peer, fx: &mut Vec<Effect>) {
        if self.status != Status::Online {
            return;
        }
        let conv = self.conversation(&with, fx);
        if conv.loading_history || (conv.history_loaded && !conv.more_history) {
            return;
        }
        conv.loading_history = true;
        let before = conv.messages.iter().filter_map(|m| m.id).min();
        fx.push(Effect::Changed(Part::Conversation(with.clone())));
        fx.push(Effect::Transmit(ClientMessage::History {
            with,
            before,
            limit: Some(40),
        }));
    }

    /// Marks everything shown in a conversation as read, when it is on screen.
    fn mark_read(&mut self, with: &Peer, fx: &mut Vec<Effect>) {
        if !self.visible || self.status != Status::Online {
            return;
        }
        let me = self.my_id().to_owned();
        let Some(conv) = self.conversations.get_mut(with) else {
            return;
        };
        let newest = conv
            .messages
            .iter()
            .chain(conv.last.iter())
            .filter(|m| !m.is_mine(&me))
            .filter_map(|m| m.id)
            .max();
        let mut changed = conv.unread != 0;
        conv.unread = 0;
        if let Some(newest) = newest
            && newest > conv.read_up_to
        {
            conv.read_up_to = newest;
            changed = true;
            fx.push(Effect::Transmit(ClientMessage::Read {
                conversation: with.clone(),
                up_to: newest,
            }));
        }
        if changed {
            fx.push(Effect::Changed(Part::Conversation(with.clone())));
            fx.push(Effect::Changed(Part::List));
        }
    }
}

#[cfg(test)]
mod tests;
