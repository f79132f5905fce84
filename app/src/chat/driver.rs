//! The browser's side of the chat, carrying out what the state machine decides: the one
//! WebSocket (connect, read, write, heartbeat, reconnect with backoff and jitter, the
//! server's close codes), the unsent list in `localStorage`, desktop notifications, and a
//! group's member list. Only the browser runs this (`hydrate`); it holds no chat state.
use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use leptos::prelude::*;

use super::Chat;
use super::state::{Input, Person, Unsent, UnsentChange};
use crate::clock::sleep;
use crate::protocol::{ClientMessage, ServerEvent, close};

/// The open socket's outgoing queue, while there is one.
#[derive(Default)]
pub struct Link {
    pub sender: Option<UnboundedSender<String>>,
    pub stopped: bool,
}

/// Sends a frame if the socket is open (the state machine only asks while online).
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

/// The wait before reconnect attempt `n`: doubling from 0.5 s up to 15 s, with jitter so
/// that many clients do not all come back at the same instant.
fn backoff(attempt: u32) -> u32 {
    let base = 500u32.saturating_mul(1 << attempt.min(5)).min(15_000);
    let jitter = (js_sys::Math::random() * f64::from(base) * 0.5) as u32;
    base / 2 + jitter
}

/// Opens the socket and keeps it open until the page goes away or the session ends.
pub fn start(chat: Chat) {
    on_cleanup(move || {
        chat.link.update_value(|link| {
            link.stopped = true;
            link.sender = None;
        });
    });
    // The page's visibility, for read receipts and notifications.
    let visibility = window_event_listener(leptos::ev::visibilitychange, move |_| {
        chat.input(Input::Visible(crate::clock::page_visible()));
    });
    on_cleanup(move || visibility.remove());
    // Leaving the page mid-call (closing the tab, reloading, going elsewhere) hangs up:
    // the other side hears it now, not after the relay's resume time.
    let leaving = window_event_listener(leptos::ev::pagehide, move |_| chat.calls.hang_up());
    on_cleanup(move || leaving.remove());
    chat.input(Input::Visible(crate::clock::page_visible()));
    leptos::task::spawn_local(async move {
        let mut attempt = 0u32;
        loop {
            if chat.link.try_with_value(|l| l.stopped).unwrap_or(true) {
                return;
            }
            chat.input(Input::Connecting);
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
            let too_many = closed_with == Some(close::TOO_MANY_CONNECTIONS);
            chat.input(Input::Disconnected { too_many });
            match closed_with {
                // Signed out on the server (logout elsewhere, password changed, revoked,
                // expired, suspended): the page signs out too; reconnecting cannot help.
                Some(close::SESSION_ENDED) => {
                    chat.signed_out();
                    return;
                }
                Some(close::TOO_MANY_CONNECTIONS) => sleep(30_000 + backoff(attempt)).await,
                // A node going away: another one answers now. The jitter spreads the
                // reconnects of everybody it held over a second.
                Some(close::RESTARTING) => {
                    sleep((js_sys::Math::random() * 1000.0) as u32).await;
                    attempt = 0;
                    continue;
                }
                // A call on screen has the server's resume time (`CALL_RESUME_SECS`) to
                // come back in: every 0.5-1 s, not the long waits.
                _ if chat.calls.live_call().is_some() => sleep(backoff(attempt.min(1))).await,
                _ => sleep(backoff(attempt)).await,
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
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerEvent>(&text) {
                    Ok(event) => chat.input(Input::Server {
                        event,
                        now: js_sys::Date::now(),
                    }),
                    Err(err) => leptos::logging::warn!("unreadable frame: {err}"),
                },
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

/// A desktop notification, when the tab is hidden and the user allowed them.
pub fn notify(title: &str, body: &str) {
    use web_sys::{Notification, NotificationOptions, NotificationPermission};
    if crate::clock::page_visible() || Notification::permission() != NotificationPermission::Granted
    {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(body);
    if let Err(err) = Notification::new_with_options(title, &options) {
        leptos::logging::warn!("notification refused: {err:?}");
    }
}

/// Fetches a group's member list and hands the names to the state machine.
pub fn look_up_group(chat: Chat, group: String) {
    leptos::task::spawn_local(async move {
        match crate::api::community::community_members(group).await {
            Ok(members) => chat.input(Input::People(
                members
                    .into_iter()
                    .map(|m| Person {
                        id: m.user.id,
                        username: m.user.username,
                        nickname: m.user.nickname,
                        avatar: m.user.avatar,
                    })
                    .collect(),
            )),
            Err(err) => leptos::logging::log!("group members not loaded: {err}"),
        }
    });
}

/// The user's messages the server has not stored yet, kept in `localStorage` per user
/// (`qc.unsent.<user id>`): a reload, a crash or a closed tab loses none of them. Every tab
/// of the user reads and writes the same list, entry by entry.
pub mod unsent {
    use super::super::state::{Unsent, UnsentChange};

    /// At most this many are kept (the oldest go first).
    const MAX: usize = 500;

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    fn key(me: &str) -> String {
        format!("qc.unsent.{me}")
    }

    pub fn load(me: &str) -> Vec<Unsent> {
        if me.is_empty() {
            return Vec::new();
        }
        storage()
            .and_then(|s| s.get_item(&key(me)).ok().flatten())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Applies one change to the stored list (read, changed, written back; removed once
    /// empty).
    pub fn change(me: &str, change: UnsentChange) {
        if me.is_empty() {
            return;
        }
        let mut list = load(me);
        match change {
            UnsentChange::Add(m) => {
                if !list.iter().any(|x| x.client_id == m.client_id) {
                    list.push(m);
                }
            }
            UnsentChange::Mark(client_id, failed) => {
                if let Some(m) = list.iter_mut().find(|m| m.client_id == client_id) {
                    m.failed = failed;
                }
            }
            UnsentChange::Remove(client_id) => list.retain(|m| m.client_id != client_id),
        }
        if list.len() > MAX {
            list.drain(..list.len() - MAX);
        }
        let Some(storage) = storage() else { return };
        let written = match serde_json::to_string(&list) {
            Ok(text) if !list.is_empty() => storage.set_item(&key(me), &text),
            _ => storage.remove_item(&key(me)),
        };
        if let Err(err) = written {
            leptos::logging::warn!("could not keep unsent messages: {err:?}");
        }
    }
}

/// Loads the stored unsent list (see [`unsent`]).
pub fn load_unsent(me: &str) -> Vec<Unsent> {
    unsent::load(me)
}

/// Applies a change to the stored unsent list (see [`unsent`]).
pub fn change_unsent(me: &str, change: UnsentChange) {
    unsent::change(me, change);
}
