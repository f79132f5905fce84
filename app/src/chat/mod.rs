//! The signed-in page's chat, built like the relay: a plain state machine (`state`) that
//! takes an input and answers effects, the browser drivers that carry the effects out
//! (`driver`: the socket, storage, notifications; time and visibility come from
//! `crate::clock`), and the
//! reactive view the components read (`view`). [`Chat`] ties them together and is provided
//! as context by the shell; every change goes through [`Chat::input`].
//!
//! The calls (`crate::call`) hear their frames through [`Chat`] too, and send theirs
//! through a callback the chat hands them (the calls never import the chat).

#[cfg(feature = "hydrate")]
mod driver;
pub mod state;
pub mod uploads;
pub mod view;

use std::collections::HashSet;

use leptos::prelude::*;

use crate::protocol::{ClientMessage, Peer};
pub use state::{ChatMessage, ChatState, Delivery, Input, Person, Status};
use state::{Effect, Part};
pub use view::{ChatView, ConversationView, Header, ListRow, Row};

/// The chat of the page (a cheap copyable handle).
#[derive(Clone, Copy)]
pub struct Chat {
    /// The truth: changed only by [`Chat::input`].
    state: StoredValue<ChatState>,
    /// What the components read.
    pub view: ChatView,
    /// The call on screen, if any.
    pub calls: crate::call::Calls,
    /// Called when contacts change (the shell reloads its lists).
    on_relation: StoredValue<Option<Callback<()>>>,
    /// Called when the server ended this page's session (the shell signs the page out);
    /// only the browser's socket learns of that.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    on_signed_out: StoredValue<Option<Callback<()>>>,
    #[cfg(feature = "hydrate")]
    link: StoredValue<driver::Link, LocalStorage>,
}

pub fn use_chat() -> Chat {
    expect_context::<Chat>()
}

impl Chat {
    /// Creates the chat and, in the browser, opens the socket.
    pub fn provide(on_relation: Callback<()>, on_signed_out: Callback<()>) -> Chat {
        let chat = Chat {
            state: StoredValue::new(ChatState::new()),
            view: ChatView::new(),
            calls: crate::call::Calls::new(),
            on_relation: StoredValue::new(Some(on_relation)),
            on_signed_out: StoredValue::new(Some(on_signed_out)),
            #[cfg(feature = "hydrate")]
            link: StoredValue::new_local(driver::Link::default()),
        };
        chat.calls
            .connect(Callback::new(move |message| chat.transmit(&message)));
        provide_context(chat);
        #[cfg(feature = "hydrate")]
        driver::start(chat);
        chat
    }

    /// Feeds one input to the state machine and carries out what it answers.
    pub fn input(self, input: Input) {
        let Some(effects) = self.state.try_update_value(|s| s.apply(input)) else {
            return;
        };
        let mut parts: Vec<Part> = Vec::new();
        let mut seen = HashSet::new();
        for effect in effects {
            match effect {
                Effect::Changed(part) => {
                    if seen.insert(part.clone()) {
                        parts.push(part);
                    }
                }
                other => self.carry_out(other),
            }
        }
        if !parts.is_empty() {
            self.state.with_value(|s| self.view.redraw(s, &parts));
        }
    }

    fn carry_out(self, effect: Effect) {
        match effect {
            Effect::Transmit(message) => self.transmit(&message),
            #[cfg(feature = "hydrate")]
            Effect::Notify { title, body } => {
                let title = if title.is_empty() {
                    crate::i18n::Msg::AppName
                        .text(crate::i18n::Lang::En)
                        .to_owned()
                } else {
                    title
                };
                driver::notify(&title, &body);
            }
            #[cfg(feature = "hydrate")]
            Effect::Unsent(change) => driver::change_unsent(&self.my_id(), change),
            #[cfg(feature = "hydrate")]
            Effect::RestoreUnsent => {
                let saved = driver::load_unsent(&self.my_id());
                if !saved.is_empty() {
                    self.input(Input::Restored(saved));
                }
            }
            #[cfg(feature = "hydrate")]
            Effect::LookUpGroup(group) => driver::look_up_group(self, group),
            Effect::ReloadContacts => {
                if let Some(callback) = self.on_relation.get_value() {
                    callback.run(());
                }
            }
            Effect::Call(event) => self.calls.server(event),
            Effect::Reconnected => self.calls.reconnected(),
            Effect::Refused { code, message } => match code {
                // Typing or reading in a chat with someone who is no longer a friend (or a
                // group just left), or a burst over the budget: expected, nothing the user
                // needs to see.
                crate::error::ErrorCode::NotFriends
                | crate::error::ErrorCode::NotMember
                | crate::error::ErrorCode::RateLimited => {
                    leptos::logging::log!("relay refused a frame: {code:?}: {message}")
                }
                // Anything else is a bug in this client.
                _ => leptos::logging::warn!("relay refused a frame: {code:?}: {message}"),
            },
            // Nothing of the browser to drive on the server.
            #[cfg(not(feature = "hydrate"))]
            Effect::Notify { .. }
            | Effect::Unsent(_)
            | Effect::RestoreUnsent
            | Effect::LookUpGroup(_) => {}
            Effect::Changed(_) => {}
        }
    }

    /// The server ended this page's session.
    #[cfg(feature = "hydrate")]
    fn signed_out(self) {
        if let Some(signed_out) = self.on_signed_out.try_get_value().flatten() {
            signed_out.run(());
        }
    }

    /// Sends a frame when the socket is open (nothing on the server).
    pub(crate) fn transmit(self, message: &ClientMessage) {
        #[cfg(feature = "hydrate")]
        driver::transmit(self, message);
        #[cfg(not(feature = "hydrate"))]
        let _ = message;
    }

    /// The user's id ("" until the socket said).
    pub fn my_id(self) -> String {
        self.state
            .try_with_value(|s| s.my_id().to_owned())
            .unwrap_or_default()
    }

    /// The person behind a user id, if the page can name them (tracks name changes).
    pub fn person(self, id: &str) -> Option<Person> {
        self.view.names.track();
        self.state
            .try_with_value(|s| s.person(id).cloned())
            .flatten()
    }

    /// The pictures of a conversation's loaded messages, oldest first: (media id, name).
    pub fn pictures(self, with: &Peer) -> Vec<(String, String)> {
        self.state
            .try_with_value(|s| s.pictures(with))
            .unwrap_or_default()
    }

    /// Sends a text; it shows as "sending" until the server acknowledges it.
    pub fn send_text(self, to: Peer, text: String) {
        self.send(to, crate::protocol::Content::Text { text });
    }

    /// Sends any content a user may send (text, or an upload as image or file), through
    /// the outbox: it shows as "sending" until acknowledged and is kept until then.
    pub fn send(self, to: Peer, content: crate::protocol::Content) {
        self.input(Input::Send {
            to,
            client_id: uuid::Uuid::new_v4().to_string(),
            content,
            now: crate::clock::now_ms(),
        });
    }

    /// Sends a refused message again with its client id.
    pub fn retry(self, to: Peer, client_id: String) {
        self.input(Input::Retry { to, client_id });
    }

    /// Gives up on a refused message.
    pub fn discard(self, to: Peer, client_id: String) {
        self.input(Input::Discard { to, client_id });
    }

    /// Asks for the page of history before the oldest loaded message.
    pub fn load_history(self, with: Peer) {
        self.input(Input::LoadHistory(with));
    }

    pub fn typing(self, to: Peer) {
        self.input(Input::Typing(to));
    }

    /// The view of the conversation a pane shows; `close` it when the pane goes.
    pub fn open(self, peer: &Peer) -> ConversationView {
        self.input(Input::Open(Some(peer.clone())));
        self.state.with_value(|s| self.view.open(s, peer))
    }

    /// The pane of `peer` went away.
    pub fn close(self, peer: &Peer) {
        self.view.close(peer);
        let still_open = self
            .state
            .try_with_value(|s| s.open.as_ref() == Some(peer))
            .unwrap_or(false);
        if still_open {
            self.input(Input::Open(None));
        }
    }
}

/// Tells the chat about the names the contact lists hold: friends and group members by
/// user id, groups by id.
pub fn names_from_contacts(
    chat: Chat,
    friends: &[crate::contacts::RelationEntry],
    groups: &[crate::contacts::RelationEntry],
) {
    chat.input(Input::People(
        friends
            .iter()
            .map(|f| Person {
                id: f.user_id.clone(),
                username: f.username.clone(),
                nickname: f.nickname.clone(),
                avatar: f.avatar.clone(),
            })
            .collect(),
    ));
    chat.input(Input::Groups(
        groups
            .iter()
            .filter_map(|g| g.community.as_ref())
            .map(|c| (c.id.clone(), c.name.clone(), c.avatar.clone()))
            .collect(),
    ));
}
